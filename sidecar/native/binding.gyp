{
  "targets": [
    {
      "target_name": "cnmd_netns",
      "sources": ["netns.c"],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-std=gnu11"]
    }
  ]
}
