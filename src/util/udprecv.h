/*
 * One datagram from a UDP socket, with the kernel's receive-queue drop
 * counter (SO_RXQ_OVFL, when the caller enabled it) folded into the
 * caller's total: the counter only comes along with a datagram, so every
 * read is also how drops get counted, not hidden.
 */
#ifndef SCTPT_UTIL_UDPRECV_H
#define SCTPT_UTIL_UDPRECV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

/*
 * recvmsg(fd, MSG_DONTWAIT) into buf: the datagram's length, or -1
 * (EAGAIN, or an error).  src may be NULL; *srclen is set when it is not.
 * *last holds the kernel's counter as of the previous datagram; what it
 * grew by since is added to *dropped.
 */
ssize_t udp_recv_counted(int fd, void *buf, size_t len, struct sockaddr_storage *src,
                         socklen_t *srclen, uint32_t *last, unsigned long *dropped);

#endif
