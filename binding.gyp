{
  "targets": [
    {
      "target_name": "mslb_tun",
      "sources": ["shared/tun/native/tun_addon.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
