{
  "targets": [
    {
      "target_name": "cnmd_batch",
      "sources": ["batch.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"]
    }
  ]
}
