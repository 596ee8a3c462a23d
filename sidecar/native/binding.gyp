{
  "targets": [
    {
      "target_name": "cnmd_netns",
      "sources": ["netns.c", "nft.c"],
      "libraries": ["-ldl"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-std=gnu11"]
    }
  ]
}
