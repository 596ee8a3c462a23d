// The few syscalls Node does not offer, for entering network namespaces (see DESIGN.md,
// "Entering a namespace from Node"). Everything here is synchronous and acts on the calling
// thread, which must be the main thread: setns(2) changes the namespace of one thread only.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <netinet/in.h>
#include <node_api.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

// Throws an Error whose `code` is the errno name (like Node's own: 'EINVAL') and whose
// `errno` and `syscall` say what failed.
static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  napi_value msg, code, error, num, sys;
  char text[160];
  const char *name = strerrorname_np(err);
  snprintf(text, sizeof text, "%s: %s", syscall, strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, err, &num);
  napi_set_named_property(env, error, "errno", num);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  napi_set_named_property(env, error, "syscall", sys);
  napi_throw(env, error);
  return NULL;
}

static int arg_int(napi_env env, napi_callback_info info, size_t want, napi_value *argv, int32_t *out) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "missing argument");
    return -1;
  }
  if (out && napi_get_value_int32(env, argv[0], out) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected an integer");
    return -1;
  }
  return 0;
}

static napi_value int_value(napi_env env, int32_t v) {
  napi_value out;
  napi_create_int32(env, v, &out);
  return out;
}

// setns(fd): CLONE_NEWNET only, so that an fd of any other kind of namespace is refused by
// the kernel (EINVAL) instead of moving the thread into, say, another mount namespace.
static napi_value js_setns(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (arg_int(env, info, 1, argv, &fd)) return NULL;
  if (setns(fd, CLONE_NEWNET) != 0) return throw_errno(env, errno, "setns");
  return NULL;
}

// nsType(fd): include/uapi/linux/nsfs.h NS_GET_NSTYPE (Linux 4.11) returns the CLONE_NEW*
// flag of a namespace fd; ENOTTY means the file is not a namespace at all.
static napi_value js_ns_type(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (arg_int(env, info, 1, argv, &fd)) return NULL;
  int type = ioctl(fd, NS_GET_NSTYPE);
  if (type < 0) return throw_errno(env, errno, "ioctl(NS_GET_NSTYPE)");
  return int_value(env, type);
}

// Parses "addr", port into a sockaddr (IPv4 or IPv6 literal only: no name lookup here).
static int parse_addr(napi_env env, napi_value *argv, struct sockaddr_storage *ss, socklen_t *len) {
  char text[INET6_ADDRSTRLEN + 1];
  size_t n;
  int32_t port;
  if (napi_get_value_string_utf8(env, argv[0], text, sizeof text, &n) != napi_ok ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok || port < 0 || port > 65535) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected an IP literal and a port");
    return -1;
  }
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    *len = sizeof *in4;
  } else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    *len = sizeof *in6;
  } else {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "not an IP literal");
    return -1;
  }
  return 0;
}

// A bound (and for TCP listening) socket of the calling thread's network namespace, as an fd
// for net.Server.listen({ fd }) or dgram's bind({ fd }). Non-blocking and close-on-exec, as
// libuv wants its fds; SO_REUSEADDR as Node sets it on its own TCP listeners.
static napi_value open_socket(napi_env env, napi_callback_info info, int type) {
  napi_value argv[2];
  size_t argc = 2;
  struct sockaddr_storage ss;
  socklen_t len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected an IP literal and a port");
    return NULL;
  }
  if (parse_addr(env, argv, &ss, &len)) return NULL;
  int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  const char *failed = NULL;
  int one = 1;
  if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
    failed = "setsockopt";
  else if (bind(fd, (struct sockaddr *)&ss, len) != 0)
    failed = "bind";
  else if (type == SOCK_STREAM && listen(fd, 511) != 0)
    failed = "listen";
  if (failed) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, failed);
  }
  return int_value(env, fd);
}

static napi_value js_tcp_listen(napi_env env, napi_callback_info info) { return open_socket(env, info, SOCK_STREAM); }

// tcpSocket(family): an unconnected TCP socket (4 or 6) of the calling thread's namespace, for
// new net.Socket({ fd }) then connect(): how a sandbox's forwarded DNS leaves from inside it.
static napi_value js_tcp_socket(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t family;
  if (arg_int(env, info, 1, argv, &family)) return NULL;
  if (family != 4 && family != 6) {
    napi_throw_type_error(env, "ERR_INVALID_ARG", "expected the family, 4 or 6");
    return NULL;
  }
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  return int_value(env, fd);
}
static napi_value js_udp_bind(napi_env env, napi_callback_info info) { return open_socket(env, info, SOCK_DGRAM); }

napi_value cnmd_nft_run(napi_env env, napi_callback_info info); // nft.c

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"setns", NULL, js_setns, NULL, NULL, NULL, napi_default, NULL},
      {"nsType", NULL, js_ns_type, NULL, NULL, NULL, napi_default, NULL},
      {"tcpListen", NULL, js_tcp_listen, NULL, NULL, NULL, napi_default, NULL},
      {"udpBind", NULL, js_udp_bind, NULL, NULL, NULL, napi_default, NULL},
      {"tcpSocket", NULL, js_tcp_socket, NULL, NULL, NULL, napi_default, NULL},
      {"nftRun", NULL, cnmd_nft_run, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
