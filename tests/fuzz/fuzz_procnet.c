// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* /proc/PID/net/{tcp,tcp6,udp,udp6,unix} of the target's network namespace: unix socket paths
 * are chosen by whoever binds them. First byte: which parser; next four: the inode. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "target/fdinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[300], *text;
	uint32_t ino;
	int which;

	if (size < 5)
		return 0;
	which = data[0] % 3;
	memcpy(&ino, data + 1, 4);
	data += 5;
	size -= 5;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	if (which == 2)
		lw_fd_parse_unix(text, size, ino, out, sizeof(out));
	else
		lw_fd_parse_inet(text, size, which, which ? "tcp" : "udp", ino, out, sizeof(out));
	/* a tiny output buffer: truncation paths */
	if (which == 2)
		lw_fd_parse_unix(text, size, ino, out, 3);
	else
		lw_fd_parse_inet(text, size, which, "tcp", ino, out, 5);
	free(text);
	return 0;
}
