// Package steer keeps one SO_REUSEPORT group of listening TCP sockets, all
// bound to the same address by the init, and decides with a classic BPF
// program (SO_ATTACH_REUSEPORT_CBPF) which of them gets each new
// connection. It lets every generation of an app accept on a socket of its
// own while the init still owns the address: a hot swap hands generation
// N+1 a socket of the group, keeps new connections going to N's until N+1
// is ready, then steers them to N+1's, so N stops only once its own accept
// queue is empty and nothing new can reach it.
//
// How the kernel picks: the group is an array (reuse->socks). A socket
// joins at the end when it listens; one that leaves (close of its last
// reference, or shutdown(SHUT_RD) of a listener) is replaced in its slot by
// the last one (socks[i] = socks[num-1]). The program, "ret #k", picks
// slot k; a k at or past the end falls back to the hash of the 4-tuple over
// every socket. Group is the one model of that array: every socket in it
// was added by Add and leaves only through Group, so the model and the
// kernel agree, and the program's k is always recomputed from the model.
//
// Invariants:
//
//   - The target (the socket the program picks) never leaves and never
//     moves while another socket is in the group: a slot whose removal
//     would move it (the target is last) is kept, as a free socket, until
//     a later change makes its removal safe. The one exception is a group
//     of two, target and one free socket: after the removal the hash has
//     one socket to choose, the target, until the program is re-pointed.
//   - A socket is held by the generations that accept on it (Hold,
//     Release). A free socket (held by nobody) gets no connection, since
//     the program never picks it; Add hands it out again before making a
//     new one, lowest slot first, so the group stays as small as the
//     generations alive at once allow.
//   - The program is attached before a second socket listens: a new
//     socket never takes a connection before it is steered to.
//
// Unprivileged: SO_REUSEPORT, classic BPF and TCP_INFO need no capability
// (Linux 4.5 for SO_ATTACH_REUSEPORT_CBPF). Every socket is created by the
// init, so they share its uid, as the kernel requires of a group.
// net.ipv4.tcp_migrate_req (off by default) would move the queue of a
// socket that leaves to another one picked by hash; nothing here relies on
// it.
package steer
