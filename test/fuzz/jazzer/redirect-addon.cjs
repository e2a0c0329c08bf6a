// Preloaded (--require) into a jazzer.js process by prepare.mjs when the stock prebuilt fuzzer
// addon cannot load on this system: loads the patched copy named by MSLB_JAZZER_ADDON instead.
'use strict';
const target = process.env.MSLB_JAZZER_ADDON;
if (target) {
  const dlopen = process.dlopen;
  process.dlopen = function (module, filename, ...rest) {
    if (typeof filename === 'string' && /[\\/]@jazzer\.js[\\/]fuzzer[\\/]prebuilds[\\/]fuzzer-linux-x64\.node$/.test(filename)) {
      filename = target;
    }
    return dlopen.call(this, module, filename, ...rest);
  };
}
