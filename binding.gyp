{
  "targets": [
    {
      "target_name": "mslb_tun",
      "sources": ["shared/tun/native/tun_addon.c", "shared/tun/native/gso_split.c", "shared/tun/native/gso_napi.c", "shared/tun/native/gro.c", "shared/tun/native/ethtool_features.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
