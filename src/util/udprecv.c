/* Datagrams with the kernel's drop count: see udprecv.h. */
#include "util/udprecv.h"

#include <string.h>
#include <sys/uio.h>

ssize_t udp_recv_counted(int fd, void *buf, size_t len, struct sockaddr_storage *src,
                         socklen_t *srclen, uint32_t *last, unsigned long *dropped)
{
	union {
		struct cmsghdr h;
		uint8_t b[CMSG_SPACE(sizeof(uint32_t))];
	} cbuf;
	struct iovec iov = { buf, len };
	struct msghdr mh;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	if (src != NULL) {
		mh.msg_name = src;
		mh.msg_namelen = sizeof(*src);
	}
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = &cbuf;
	mh.msg_controllen = sizeof(cbuf);
	n = recvmsg(fd, &mh, MSG_DONTWAIT);
	if (n < 0)
		return -1;
	if (srclen != NULL)
		*srclen = mh.msg_namelen;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
			uint32_t v;

			memcpy(&v, CMSG_DATA(c), sizeof(v));
			*dropped += v - *last;
			*last = v;
		}
	}
	return n;
}
