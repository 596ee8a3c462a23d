// cnmd batch UDP: one JS call per batch of datagrams instead of one per datagram.
//
// libuv watches the socket (uv_poll_t, level-triggered); when it is readable we drain it with
// recvmmsg(2) into buffers that JS sees too, call the socket's JS batch function ONCE with the
// count, and send every reply it wrote with one sendmmsg(2). Nothing is copied between C and
// JS: the kernel writes datagrams and peer addresses straight into ArrayBuffers that JS views,
// and JS writes replies into another one that the kernel reads.
//
// The buffers are shared by every socket of a JS environment (thread): batches run one at a
// time on the loop thread, so one set suffices and memory stays constant however many
// sandboxes there are. Layout (BATCH slots):
//   recv  BATCH x SLOT bytes   datagram i at i*SLOT                      (C writes, JS reads)
//   send  BATCH x SLOT bytes   reply to datagram i at i*SLOT             (JS writes, C reads)
//   peers BATCH x PEER bytes   sockaddr of datagram i at i*PEER          (C writes, JS reads)
//   meta  2*BATCH int32        [i] length of datagram i (0: skip it),
//                              [BATCH+i] length of the reply to i (0: none)
//
// Exports: bind(host, port) -> fd, localPort(fd), open(fd, onBatch, onError) -> handle,
// sendTo(handle, data, peer) -> 0 | -errno, stats(handle), close(handle), and the buffers.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define BATCH 64
#define SLOT 4096 // a DNS datagram larger than this is truncated by the kernel and dropped
#define PEER 32   // room for a struct sockaddr_in6 (28 bytes), 4-byte aligned
#define MAX_BATCHES_PER_WAKE 8 // then yield to the rest of the loop; level-triggered poll returns

#define CHECK(call)                                                                                \
  do {                                                                                             \
    if ((call) != napi_ok) return NULL;                                                            \
  } while (0)

typedef struct {
  uint8_t *recv, *send, *peers;
  int32_t *meta;
  napi_ref refs[4]; // keep the four ArrayBuffers alive as long as the environment
  struct mmsghdr rmsg[BATCH], smsg[BATCH];
  struct iovec riov[BATCH], siov[BATCH];
} shared_t;

typedef struct {
  uv_poll_t poll;
  int fd;
  int closed, poll_closed, finalized;
  napi_env env;
  napi_ref on_batch, on_error;
  napi_async_context ctx;
  shared_t *sh;
  double received, sent, dropped, batches;
} sock_t;

static void maybe_free(sock_t *s) {
  if (s->poll_closed && s->finalized) free(s);
}

static void on_poll_closed(uv_handle_t *h) {
  sock_t *s = h->data;
  s->poll_closed = 1;
  maybe_free(s);
}

// Idempotent. uv_poll_stop before close(2): libuv must stop watching an fd before it is closed.
static void sock_close(sock_t *s) {
  if (s->closed) return;
  s->closed = 1;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_poll_closed);
  close(s->fd);
  s->fd = -1;
  napi_delete_reference(s->env, s->on_batch);
  napi_delete_reference(s->env, s->on_error);
  napi_async_destroy(s->env, s->ctx);
}

// Calls fn(argv...) as libuv-driven callbacks must: through napi_make_callback, so that
// process.nextTick and promise jobs queued by the handler run right after it.
static napi_value call_js(sock_t *s, napi_ref fn_ref, size_t argc, napi_value *argv) {
  napi_env env = s->env;
  napi_value fn, global, result = NULL;
  napi_get_reference_value(env, fn_ref, &fn);
  napi_get_global(env, &global);
  if (napi_make_callback(env, s->ctx, global, fn, argc, argv, &result) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err); // as for any callback that throws: 'uncaughtException'
    return NULL;
  }
  return result;
}

static void report_error(sock_t *s, int err, const char *syscall) {
  napi_value argv[3];
  napi_create_string_utf8(s->env, uv_err_name(uv_translate_sys_error(err)), NAPI_AUTO_LENGTH, &argv[0]);
  napi_create_string_utf8(s->env, syscall, NAPI_AUTO_LENGTH, &argv[1]);
  napi_create_int32(s->env, err, &argv[2]);
  call_js(s, s->on_error, 3, argv);
}

// Sends the replies JS wrote for the n datagrams of this batch, with as few sendmmsg(2) calls
// as the kernel allows. Returns the errno of the first message that failed, or 0.
static int send_batch(sock_t *s, int n) {
  shared_t *sh = s->sh;
  int m = 0, first_err = 0;
  for (int i = 0; i < n; i++) {
    int len = sh->meta[BATCH + i];
    if (len <= 0 || len > SLOT) continue;
    sh->siov[m].iov_base = sh->send + (size_t)i * SLOT;
    sh->siov[m].iov_len = (size_t)len;
    struct msghdr *h = &sh->smsg[m].msg_hdr;
    memset(h, 0, sizeof *h);
    h->msg_name = sh->peers + (size_t)i * PEER; // reply to the datagram's own sender
    h->msg_namelen = sh->rmsg[i].msg_hdr.msg_namelen;
    h->msg_iov = &sh->siov[m];
    h->msg_iovlen = 1;
    m++;
  }
  int done = 0;
  while (done < m) {
    int k = sendmmsg(s->fd, sh->smsg + done, (unsigned)(m - done), MSG_DONTWAIT);
    if (k > 0) {
      // sendmmsg(2): "If an error occurs after at least one message has been sent, the call
      // succeeds, and returns the number of messages sent. [...] The caller can retry the
      // transmission, starting at the first failed message": the next call reports why.
      done += k;
      s->sent += k;
      continue;
    }
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      // The send buffer is full: drop the rest, as the kernel drops UDP it cannot queue; DNS
      // clients retry.
      s->dropped += m - done;
      break;
    }
    if (first_err == 0) first_err = k < 0 ? errno : EIO;
    s->dropped++;
    done++; // skip the message that failed (e.g. EPERM from a firewall), send the others
  }
  return first_err;
}

// Drains the socket: up to MAX_BATCHES_PER_WAKE recvmmsg(2) batches, one JS call each.
static void on_poll(uv_poll_t *h, int status, int events) {
  (void)events;
  sock_t *s = h->data;
  shared_t *sh = s->sh;
  napi_handle_scope scope;
  napi_open_handle_scope(s->env, &scope);
  if (status < 0) {
    report_error(s, -status, "uv_poll");
    goto out;
  }
  for (int round = 0; round < MAX_BATCHES_PER_WAKE && !s->closed; round++) {
    for (int i = 0; i < BATCH; i++) sh->rmsg[i].msg_hdr.msg_namelen = PEER; // in/out: reset
    // recvmmsg(2): MSG_DONTWAIT returns what is queued now (up to BATCH), or EAGAIN if nothing.
    // The timeout argument is NULL: it is only checked after each datagram (see BUGS).
    int n = recvmmsg(s->fd, sh->rmsg, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) report_error(s, errno, "recvmmsg");
      break;
    }
    s->received += n;
    s->batches++;
    for (int i = 0; i < n; i++) {
      // MSG_TRUNC: the datagram was longer than SLOT; a DNS query never is, so drop it.
      sh->meta[i] = (sh->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) ? 0 : (int32_t)sh->rmsg[i].msg_len;
    }
    for (int i = 0; i < n; i++) sh->meta[BATCH + i] = 0; // no stale reply if JS throws midway
    napi_value argv[1];
    napi_create_int32(s->env, n, &argv[0]);
    napi_value ok = call_js(s, s->on_batch, 1, argv);
    if (s->closed || ok == NULL) break; // the handler closed the socket, or threw
    int err = send_batch(s, n);
    if (err != 0) report_error(s, err, "sendmmsg");
    if (n < BATCH) break; // drained
  }
out:
  napi_close_handle_scope(s->env, scope);
}

static void finalize_sock(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  sock_t *s = data;
  s->finalized = 1;
  if (!s->closed) sock_close(s); // never closed: do not leak the fd
  maybe_free(s);
}

static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  char msg[128];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  napi_throw_error(env, uv_err_name(uv_translate_sys_error(err)), msg);
  return NULL;
}

static sock_t *get_sock(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "not a batch socket handle");
    return NULL;
  }
  return p;
}

// bind(host: string, port: number): number: a non-blocking UDP socket bound to host:port, in
// the network namespace of the calling thread (the sidecar switches it before calling).
static napi_value js_bind(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  char host[INET6_ADDRSTRLEN];
  uint32_t port;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, NULL) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &port) != napi_ok || port > 65535) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "bind(host: string, port: number)");
    return NULL;
  }
  struct sockaddr_in6 a6 = {0};
  struct sockaddr_in a4 = {0};
  struct sockaddr *sa;
  socklen_t len;
  int family;
  if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
    a4.sin_family = family = AF_INET;
    a4.sin_port = htons((uint16_t)port);
    sa = (struct sockaddr *)&a4;
    len = sizeof a4;
  } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
    a6.sin6_family = family = AF_INET6;
    a6.sin6_port = htons((uint16_t)port);
    sa = (struct sockaddr *)&a6;
    len = sizeof a6;
  } else {
    napi_throw_type_error(env, "ERR_INVALID_IP_ADDRESS", "bind: host must be an IP address literal");
    return NULL;
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  if (bind(fd, sa, len) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind");
  }
  CHECK(napi_create_int32(env, fd, &result));
  return result;
}

// localPort(fd: number): number, from getsockname(2) (to learn the port bind(host, 0) chose).
static napi_value js_local_port(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return throw_errno(env, errno, "getsockname");
  uint16_t port = ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port;
  CHECK(napi_create_uint32(env, ntohs(port), &result));
  return result;
}

// open(fd, onBatch(n), onError(code, syscall, errno)): starts watching fd, which it now owns
// (it is closed by close(handle), or here if open fails).
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result, name;
  int32_t fd;
  uv_loop_t *loop;
  shared_t *sh;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_instance_data(env, (void **)&sh));
  CHECK(napi_get_uv_event_loop(env, &loop));
  sock_t *s = calloc(1, sizeof *s);
  if (s == NULL) return throw_errno(env, ENOMEM, "open");
  s->fd = fd;
  s->env = env;
  s->sh = sh;
  s->poll.data = s;
  int r = uv_poll_init(loop, &s->poll, fd);
  if (r != 0) {
    free(s);
    close(fd);
    return throw_errno(env, -r, "uv_poll_init");
  }
  r = uv_poll_start(&s->poll, UV_READABLE, on_poll);
  if (r != 0) {
    // An initialised handle belongs to the loop until uv_close's callback frees it.
    s->closed = s->finalized = 1;
    uv_close((uv_handle_t *)&s->poll, on_poll_closed);
    close(fd);
    return throw_errno(env, -r, "uv_poll_start");
  }
  CHECK(napi_create_reference(env, argv[1], 1, &s->on_batch));
  CHECK(napi_create_reference(env, argv[2], 1, &s->on_error));
  CHECK(napi_create_string_utf8(env, "cnmd:BatchUdp", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &s->ctx));
  CHECK(napi_create_external(env, s, finalize_sock, NULL, &result));
  return result;
}

// sendTo(handle, data: Uint8Array, peer: Uint8Array): 0, or -errno (EAGAIN: dropped).
static napi_value js_send_to(napi_env env, napi_callback_info info) {
  size_t argc = 3, len, plen;
  napi_value argv[3], result;
  void *data, *peer;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = get_sock(env, argv[0]);
  if (s == NULL) return NULL;
  CHECK(napi_get_typedarray_info(env, argv[1], NULL, &len, &data, NULL, NULL));
  CHECK(napi_get_typedarray_info(env, argv[2], NULL, &plen, &peer, NULL, NULL));
  int ret = 0;
  sa_family_t family = 0;
  if (plen >= sizeof family) memcpy(&family, peer, sizeof family);
  socklen_t salen = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
  if (s->closed) {
    ret = -EBADF;
  } else if ((family != AF_INET && family != AF_INET6) || plen < salen) {
    ret = -EINVAL;
  } else if (sendto(s->fd, data, len, MSG_DONTWAIT, (struct sockaddr *)peer, salen) < 0) {
    ret = -errno;
    s->dropped++;
  } else {
    s->sent++;
  }
  CHECK(napi_create_int32(env, ret, &result));
  return result;
}

// stats(handle): [received, sent, dropped, batches] since open.
static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, v;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = get_sock(env, argv[0]);
  if (s == NULL) return NULL;
  double xs[4] = {s->received, s->sent, s->dropped, s->batches};
  CHECK(napi_create_array_with_length(env, 4, &result));
  for (uint32_t i = 0; i < 4; i++) {
    CHECK(napi_create_double(env, xs[i], &v));
    CHECK(napi_set_element(env, result, i, v));
  }
  return result;
}

// close(handle): stops watching and closes the fd; idempotent.
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = get_sock(env, argv[0]);
  if (s == NULL) return NULL;
  sock_close(s);
  return NULL;
}

static void finalize_shared(napi_env env, void *data, void *hint) {
  (void)hint;
  shared_t *sh = data;
  for (int i = 0; i < 4; i++)
    if (sh->refs[i]) napi_delete_reference(env, sh->refs[i]);
  free(sh);
}

// An ArrayBuffer that V8 owns, exported as `name`; returns its memory, which stays put: the
// reference keeps it alive and nothing detaches it.
static void *export_buffer(napi_env env, napi_value exports, const char *name, size_t size, napi_ref *ref) {
  void *data;
  napi_value ab;
  if (napi_create_arraybuffer(env, size, &data, &ab) != napi_ok) return NULL;
  if (napi_create_reference(env, ab, 1, ref) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, name, ab) != napi_ok) return NULL;
  return data;
}

static napi_value init(napi_env env, napi_value exports) {
  shared_t *sh = calloc(1, sizeof *sh);
  if (sh == NULL) return NULL;
  CHECK(napi_set_instance_data(env, sh, finalize_shared, NULL));
  sh->recv = export_buffer(env, exports, "recv", (size_t)BATCH * SLOT, &sh->refs[0]);
  sh->send = export_buffer(env, exports, "send", (size_t)BATCH * SLOT, &sh->refs[1]);
  sh->peers = export_buffer(env, exports, "peers", (size_t)BATCH * PEER, &sh->refs[2]);
  sh->meta = export_buffer(env, exports, "meta", 2 * BATCH * sizeof(int32_t), &sh->refs[3]);
  if (!sh->recv || !sh->send || !sh->peers || !sh->meta) return NULL;
  for (int i = 0; i < BATCH; i++) {
    sh->riov[i].iov_base = sh->recv + (size_t)i * SLOT;
    sh->riov[i].iov_len = SLOT;
    sh->rmsg[i].msg_hdr.msg_name = sh->peers + (size_t)i * PEER;
    sh->rmsg[i].msg_hdr.msg_iov = &sh->riov[i];
    sh->rmsg[i].msg_hdr.msg_iovlen = 1;
  }
  const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"bind", js_bind},   {"localPort", js_local_port}, {"open", js_open},
             {"sendTo", js_send_to}, {"stats", js_stats},        {"close", js_close}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    CHECK(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f));
    CHECK(napi_set_named_property(env, exports, fns[i].name, f));
  }
  const struct {
    const char *name;
    int value;
  } consts[] = {{"BATCH", BATCH}, {"SLOT", SLOT}, {"PEER", PEER}};
  for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++) {
    napi_value v;
    CHECK(napi_create_int32(env, consts[i].value, &v));
    CHECK(napi_set_named_property(env, exports, consts[i].name, v));
  }
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
