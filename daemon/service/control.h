/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * loopwatchd's control socket: a unix stream socket (mode 0600, default
 * /run/loopwatch/control.sock) that `loopwatch status` asks what the daemon is doing.
 *
 * Protocol: the client sends one request line ("status\n"); the daemon answers with one JSON
 * object on one line and closes. A failed request is answered {"error": "..."}. Only root (or the
 * daemon's own user) is served: the peer's credentials are checked, not only the file mode.
 * The server runs inside the engine's epoll loop (lw_engine__on_fd) and never blocks it for
 * long: a client gets 200 ms to send its request and 1 s to read the answer.
 */
#ifndef LW_CONTROL_H
#define LW_CONTROL_H

#include <stddef.h>

struct json_object;
struct lw_control;

/* Build the answer to a request ("status"); return NULL for an unknown one. Caller frees. */
typedef struct json_object *(*lw_control_fn)(void *ctx, const char *request);

/* Listen on path (creating its directory if missing; a stale socket is replaced, a live one is
 * an error). 0 or -errno with err filled. */
int lw_control__new(const char *path, lw_control_fn fn, void *ctx, struct lw_control **out,
		    char *err, size_t errlen);
/* Close and remove the socket */
void lw_control__free(struct lw_control *c);
int lw_control__fd(const struct lw_control *c);
/* The listening socket is readable: serve the waiting clients */
void lw_control__handle(struct lw_control *c);
/* Shaped for lw_engine__on_fd (ctx = struct lw_control) */
void lw_control__on_fd(void *ctx, int fd);
unsigned long lw_control__served(const struct lw_control *c);

/* Client: send request, return the answer line (malloc'd) in *reply. 0 or -errno with err
 * saying why and what to do. timeout_ms bounds the whole exchange. */
int lw_control_request(const char *path, const char *request, int timeout_ms, char **reply,
		       char *err, size_t errlen);

#endif
