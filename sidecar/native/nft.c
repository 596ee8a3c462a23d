// nftables in-process: libnftables (the library the nft command is built on, shipped by
// Debian's nftables package as libnftables.so.1) is loaded with dlopen, so no -dev package is
// needed to build. A context is made per call, on the calling thread: its netlink socket then
// belongs to the namespace the thread is in (withNetns), and one script is one transaction,
// as `nft -f` makes it. Saves a process per sandbox on the attach path.
#include <dlfcn.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// include/nftables/libnftables.h (not installed without libnftables-dev): the calls we use.
struct nft_ctx;
static struct nft_ctx *(*ctx_new)(uint32_t flags);
static void (*ctx_free)(struct nft_ctx *ctx);
static int (*buffer_error)(struct nft_ctx *ctx);
static const char *(*error_buffer)(struct nft_ctx *ctx);
static int (*run_cmd)(struct nft_ctx *ctx, const char *buf);

static const char *load(void) {
  static int tried;
  static const char *failure;
  if (tried) return failure;
  tried = 1;
  void *lib = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return failure = "libnftables.so.1 not found (Debian package nftables)";
  ctx_new = (struct nft_ctx * (*)(uint32_t)) dlsym(lib, "nft_ctx_new");
  ctx_free = (void (*)(struct nft_ctx *))dlsym(lib, "nft_ctx_free");
  buffer_error = (int (*)(struct nft_ctx *))dlsym(lib, "nft_ctx_buffer_error");
  error_buffer = (const char *(*)(struct nft_ctx *))dlsym(lib, "nft_ctx_get_error_buffer");
  run_cmd = (int (*)(struct nft_ctx *, const char *))dlsym(lib, "nft_run_cmd_from_buffer");
  if (!ctx_new || !ctx_free || !buffer_error || !error_buffer || !run_cmd)
    return failure = "libnftables.so.1 lacks the expected symbols";
  return NULL;
}

// nftRun(script): runs an nft script in the calling thread's namespace; throws with nft's error.
napi_value cnmd_nft_run(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t argc = 1, len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected an nft script");
    return NULL;
  }
  const char *failure = load();
  if (failure) {
    napi_throw_error(env, "ENOENT", failure);
    return NULL;
  }
  char *script = malloc(len + 1);
  if (!script) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], script, len + 1, &len);
  struct nft_ctx *ctx = ctx_new(0); // NFT_CTX_DEFAULT
  if (!ctx) {
    free(script);
    napi_throw_error(env, "ENOMEM", "nft_ctx_new failed");
    return NULL;
  }
  buffer_error(ctx);
  int rc = run_cmd(ctx, script);
  free(script);
  if (rc != 0) {
    const char *msg = error_buffer(ctx);
    napi_throw_error(env, "EINVAL", msg && *msg ? msg : "nft refused the script");
    ctx_free(ctx);
    return NULL;
  }
  ctx_free(ctx);
  return NULL;
}
