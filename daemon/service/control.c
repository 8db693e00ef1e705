// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "service/control.h"
#include "record/jsonrec.h"
#include "base/lw_util.h"
#include "base/safefile.h"

#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_MAX 256
#define REQUEST_WAIT_MS 200
#define REPLY_WAIT_MS 1000
#define CLIENTS_PER_WAKEUP 8

struct lw_control {
	int fd;
	char *path;
	dev_t dev;
	ino_t ino;
	lw_control_fn fn;
	void *ctx;
	unsigned long served;
};

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* something already at path: a live daemon's socket (refuse), a stale one (remove), other */
static int clear_path(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, r;

	if (lstat(path, &st)) {
		if (errno == ENOENT)
			return 0;
		r = -errno;
		snprintf(err, errlen, "cannot check control socket %s: %s", path, strerror(-r));
		return r;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen,
			 "control socket %s exists and is not a socket: remove it, or set "
			 "[daemon] control_socket to another path",
			 path);
		return -EEXIST;
	}
	fill_addr(path, &sa);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "socket: %s", strerror(-r));
		return r;
	}
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (r == 0) {
		snprintf(err, errlen,
			 "another loopwatchd answers on %s: stop it first, or give this "
			 "one another [daemon] control_socket",
			 path);
		return -EADDRINUSE;
	}
	if (unlink(path) && errno != ENOENT) {
		r = -errno;
		snprintf(err, errlen, "cannot remove the stale control socket %s: %s", path,
			 strerror(-r));
		return r;
	}
	return 0;
}

int lw_control__new(const char *path, lw_control_fn fn, void *ctx, struct lw_control **out,
		    char *err, size_t errlen)
{
	struct lw_control *c = calloc(1, sizeof(*c));
	struct sockaddr_un sa;
	struct stat st;
	mode_t old;
	char *dir = NULL, *slash;
	int r;

	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->fn = fn;
	c->ctx = ctx;
	c->path = strdup(path);
	dir = strdup(path);
	if (!c->path || !dir) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r = fill_addr(path, &sa);
	if (r) {
		snprintf(err, errlen, "control socket path too long: %s", path);
		goto fail;
	}
	/* its directory (/run/loopwatch: systemd's RuntimeDirectory= makes it under the unit),
	 * created 0750; refused when others could replace the socket in it */
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		char why[900];

		*slash = 0;
		if (mkdir(dir, 0750) && errno != EEXIST) {
			r = -errno;
			snprintf(err, errlen, "cannot create %s for the control socket: %s", dir,
				 strerror(-r));
			goto fail;
		}
		r = lw_check_private_dir(dir, geteuid(), why, sizeof(why));
		if (r) {
			snprintf(err, errlen, "refusing the control socket directory: %s; or set "
				 "[daemon] control_socket to a place only root can write", why);
			goto fail;
		}
	}
	r = clear_path(path, err, errlen);
	if (r)
		goto fail;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		r = -errno;
		snprintf(err, errlen, "socket: %s", strerror(-r));
		goto fail;
	}
	/* root only: created 0600 (we are single-threaded, the umask change is ours alone) */
	old = umask(0177);
	r = bind(c->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r) {
		r = -errno;
		snprintf(err, errlen, "cannot create the control socket %s: %s%s", path,
			 strerror(-r), r == -EROFS || r == -EACCES ?
			 " (set [daemon] control_socket to a writable place, or none)" : "");
		goto fail;
	}
	if (chmod(path, 0600) || stat(path, &st) || listen(c->fd, 16)) {
		r = -errno;
		snprintf(err, errlen, "cannot set up the control socket %s: %s", path,
			 strerror(-r));
		unlink(path);
		goto fail;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	free(dir);
	*out = c;
	return 0;
fail:
	free(dir);
	if (c->fd >= 0)
		close(c->fd);
	free(c->path);
	free(c);
	return r;
}

void lw_control__free(struct lw_control *c)
{
	struct stat st;

	if (!c)
		return;
	if (c->fd >= 0) {
		close(c->fd);
		/* only our own socket: another daemon may have taken the path meanwhile */
		if (lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
			unlink(c->path);
	}
	free(c->path);
	free(c);
}

int lw_control__fd(const struct lw_control *c)
{
	return c->fd;
}

unsigned long lw_control__served(const struct lw_control *c)
{
	return c->served;
}

static uint64_t now_ms(void)
{
	return lw_now_mono() / 1000000ull;
}

/* wait for fd to be ready for events until deadline (ms); 0 or -ETIMEDOUT */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd p = { fd, events, 0 };

	for (;;) {
		uint64_t now = now_ms();
		int r;

		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(deadline - now));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int write_all(int fd, const char *buf, size_t len, uint64_t deadline)
{
	size_t off = 0;

	while (off < len) {
		ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && wait_fd(fd, POLLOUT, deadline) == 0)
				continue;
			return -errno;
		}
		off += (size_t)w;
	}
	return 0;
}

static void reply_error(int fd, const char *msg, uint64_t deadline)
{
	struct json_object *o = json_object_new_object();
	const char *line;

	json_object_object_add(o, "error", json_object_new_string(msg));
	line = lw_j_line(o);
	if (write_all(fd, line, strlen(line), deadline) == 0)
		write_all(fd, "\n", 1, deadline);
	json_object_put(o);
}

static void serve(struct lw_control *c, int fd)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	char req[REQUEST_MAX + 1];
	size_t n = 0;
	uint64_t deadline = now_ms() + REQUEST_WAIT_MS;
	struct json_object *ans;
	const char *line;
	int refused = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) ||
		      (cred.uid != 0 && cred.uid != geteuid());

	/* one request line, read before anything else: closing with the client's request
	 * unread would reset the connection, and a refused client would see "connection reset"
	 * instead of the reason */
	while (n < REQUEST_MAX) {
		ssize_t r = recv(fd, req + n, REQUEST_MAX - n, 0);

		if (r > 0) {
			n += (size_t)r;
			if (memchr(req, '\n', n))
				break;
			continue;
		}
		if (r == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN || wait_fd(fd, POLLIN, deadline))
			return;	/* a silent client: drop it */
	}
	req[n] = 0;
	req[strcspn(req, "\r\n")] = 0;
	deadline = now_ms() + REPLY_WAIT_MS;
	if (refused) {
		reply_error(fd, "permission denied: loopwatch status needs root", deadline);
		shutdown(fd, SHUT_WR);
		return;
	}
	ans = c->fn(c->ctx, req);
	if (!ans) {
		char msg[REQUEST_MAX + 64];

		snprintf(msg, sizeof(msg), "unknown request '%.60s': expected status", req);
		reply_error(fd, msg, deadline);
		return;
	}
	line = lw_j_line(ans);
	if (write_all(fd, line, strlen(line), deadline) == 0)
		write_all(fd, "\n", 1, deadline);
	json_object_put(ans);
	c->served++;
}

void lw_control__handle(struct lw_control *c)
{
	int i;

	for (i = 0; i < CLIENTS_PER_WAKEUP; i++) {
		int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			return;	/* EAGAIN: nobody else waiting; other errors: next wakeup */
		}
		serve(c, fd);
		close(fd);
	}
}

void lw_control__on_fd(void *ctx, int fd)
{
	(void)fd;
	lw_control__handle(ctx);
}

int lw_control_request(const char *path, const char *request, int timeout_ms, char **reply,
		       char *err, size_t errlen)
{
	struct sockaddr_un sa;
	uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 5000);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd = -1, r;

	*reply = NULL;
	if (fill_addr(path, &sa)) {
		snprintf(err, errlen, "control socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "socket: %s", strerror(-r));
		return r;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		r = -errno;
		if (r == -ENOENT)
			snprintf(err, errlen, "no control socket at %s: is loopwatchd running? "
				 "(systemctl status loopwatchd)", path);
		else if (r == -EACCES || r == -EPERM)
			snprintf(err, errlen,
				 "permission denied on %s: loopwatch status needs root", path);
		else if (r == -ECONNREFUSED)
			snprintf(err, errlen, "nobody answers on %s: loopwatchd is not running (a "
				 "stale socket)", path);
		else
			snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(-r));
		goto out;
	}
	{
		struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	r = write_all(fd, request, strlen(request), deadline);
	if (!r)
		r = write_all(fd, "\n", 1, deadline);
	if (r) {
		snprintf(err, errlen, "cannot send to %s: %s", path, strerror(-r));
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (len + 4096 + 1 > cap) {
			size_t nc = cap ? cap * 2 : 16384;
			char *nb;

			if (nc > 64u << 20) {
				r = -EFBIG;
				snprintf(err, errlen, "the answer from %s is too large", path);
				goto out;
			}
			nb = realloc(buf, nc);
			if (!nb) {
				r = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			buf = nb;
			cap = nc;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n == 0)
			break;
		if (errno == EINTR && now_ms() < deadline)
			continue;
		r = errno == EAGAIN ? -ETIMEDOUT : -errno;
		snprintf(err, errlen, "no answer from loopwatchd on %s: %s", path,
			 r == -ETIMEDOUT ? "timed out (is the daemon stuck?)" : strerror(-r));
		goto out;
	}
	if (!len) {
		r = -EPROTO;
		snprintf(err, errlen, "loopwatchd closed %s without answering", path);
		goto out;
	}
	buf[len] = 0;
	*reply = buf;
	buf = NULL;
	r = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return r;
}
