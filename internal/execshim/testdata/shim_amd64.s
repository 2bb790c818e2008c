# The native exec shim for amd64; internal/execshim's package doc is the
# contract. Registers kept across the program: r12 = &argc, rbx = argc,
# r13 = errfd, rbp = the takeover socket or -1, r14 = envp.
.intel_syntax noprefix
.globl _start
_start:
	mov	r12, rsp		# r12 = &argc; argv at r12+8
	mov	rbx, [r12]		# argc
	cmp	rbx, 3			# errfd, path, argv[0] at least
	jb	usage
	lea	r14, [r12+rbx*8+16]	# envp = &argv[argc+1]
	cmp	qword ptr [r14], 0	# the pid slot comes first
	je	usage
	mov	rsi, [r12+8]		# argv[0]: "errfd" or "errfd:takeoverfd"
	call	atoi
	cmp	rax, 3			# never stdin, stdout or stderr
	jb	usage
	mov	r13, rax
	mov	rbp, -1
	cmp	byte ptr [rsi], ':'
	jne	1f
	inc	rsi
	call	atoi
	cmp	rax, 3
	jb	1f
	mov	rbp, rax
1:	mov	eax, 72			# fcntl(errfd, F_SETFD, FD_CLOEXEC)
	mov	rdi, r13
	mov	esi, 2
	mov	edx, 1
	syscall
	mov	eax, 3			# close(errfd+1): this image's own fd
	lea	rdi, [r13+1]
	syscall
	test	rbp, rbp
	js	2f
	call	trap
2:	mov	rdi, [r12+16]		# an empty path: the takeover's probe,
	cmp	byte ptr [rdi], 0	# which wanted only the answer above
	je	probed
	mov	eax, 39			# getpid
	syscall
	mov	rdi, [r14]		# envp[0] = "LISTEN_PID=" and 10 spare bytes
	add	rdi, 11
	call	itoa
	mov	eax, 59			# execve(argv[1], &argv[2], envp)
	mov	rdi, [r12+16]
	lea	rsi, [r12+24]
	mov	rdx, r14
	syscall
	neg	rax			# -errno
	mov	r15, rax
	sub	rsp, 64
	mov	rdi, rsp
	call	itoa
	mov	rdx, rax		# write(errfd, digits, n)
	mov	eax, 1
	mov	rdi, r13
	mov	rsi, rsp
	syscall
	mov	edi, 127		# ENOENT, ENOTDIR: 127; else 126
	cmp	r15, 2
	je	3f
	cmp	r15, 20
	je	3f
usage:	mov	edi, 126
	jmp	3f
probed:	xor	edi, edi
3:	mov	eax, 231		# exit_group
	syscall

# trap installs the bind takeover's filter and answers on the takeover
# socket (rbp), as the Go shim does: "K" with the notification fd, or
# "E<errno> <what failed>"; then closes it. Whatever happens, the exec
# goes on: an app that takes fds 3.. works without the takeover.
trap:	mov	eax, 157		# prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
	mov	edi, 38
	mov	esi, 1
	xor	edx, edx
	xor	r10d, r10d
	xor	r8d, r8d
	syscall
	lea	r15, [rip+noNewPrivs]
	test	rax, rax
	jnz	refused
	lea	rax, [rip+filter]	# struct sock_fprog {len, filter}
	push	rax
	push	(filterEnd-filter)/8
	mov	eax, 317		# seccomp(SET_MODE_FILTER, FLAG_NEW_LISTENER, &prog)
	mov	edi, 1
	mov	esi, 8
	mov	rdx, rsp
	syscall
	add	rsp, 16
	lea	r15, [rip+newListener]
	test	rax, rax
	js	refused
	mov	r15, rax		# the notification fd
	sub	rsp, 112		# msghdr 0, iovec 56, cmsghdr 72, "K" 96
	xor	eax, eax
	mov	[rsp], rax		# msg_name
	mov	[rsp+8], rax		# msg_namelen
	lea	rax, [rsp+56]
	mov	[rsp+16], rax		# msg_iov
	mov	qword ptr [rsp+24], 1	# msg_iovlen
	lea	rax, [rsp+72]
	mov	[rsp+32], rax		# msg_control
	mov	qword ptr [rsp+40], 24	# msg_controllen: CMSG_SPACE(4)
	mov	qword ptr [rsp+48], 0	# msg_flags
	lea	rax, [rsp+96]
	mov	[rsp+56], rax		# iov_base
	mov	qword ptr [rsp+64], 1	# iov_len
	mov	qword ptr [rsp+72], 20	# cmsg_len: CMSG_LEN(4)
	mov	dword ptr [rsp+80], 1	# SOL_SOCKET
	mov	dword ptr [rsp+84], 1	# SCM_RIGHTS
	mov	[rsp+88], r15		# the fd, and zero padding
	mov	byte ptr [rsp+96], 'K'
	mov	eax, 46			# sendmsg(sock, &msg, 0)
	mov	rdi, rbp
	mov	rsi, rsp
	xor	edx, edx
	syscall
	add	rsp, 112
	mov	eax, 3			# close(the notification fd): the init has it
	mov	rdi, r15
	syscall
	jmp	5f
refused:				# rax = -errno, r15 = what failed
	neg	rax
	sub	rsp, 128
	mov	byte ptr [rsp], 'E'
	lea	rdi, [rsp+1]
	call	itoa
	lea	rdi, [rsp+rax+1]
	mov	byte ptr [rdi], ' '
4:	inc	rdi
	mov	al, [r15]
	mov	[rdi], al
	inc	r15
	test	al, al
	jnz	4b
	mov	rdx, rdi		# write(sock, msg, len): one SEQPACKET message
	sub	rdx, rsp
	mov	eax, 1
	mov	rdi, rbp
	mov	rsi, rsp
	syscall
	add	rsp, 128
5:	mov	eax, 3			# close(sock)
	mov	rdi, rbp
	syscall
	ret

# atoi reads decimal digits at rsi into rax; rsi is left on the first
# byte that is not a digit.
atoi:	xor	eax, eax
6:	movzx	ecx, byte ptr [rsi]
	sub	ecx, '0'
	cmp	ecx, 9
	ja	7f
	imul	rax, rax, 10
	add	rax, rcx
	inc	rsi
	jmp	6b
7:	ret

# itoa writes rax in decimal at rdi, NUL-terminated; returns the length
# in rax. A leaf: its digits go to the red zone below rsp.
itoa:	lea	rsi, [rsp-8]
	mov	r8, rsi
	mov	ecx, 10
8:	xor	edx, edx
	div	rcx
	add	dl, '0'
	dec	rsi
	mov	[rsi], dl
	test	rax, rax
	jnz	8b
	mov	rax, r8
	sub	rax, rsi
	mov	rcx, rax
9:	mov	dl, [rsi]
	mov	[rdi], dl
	inc	rsi
	inc	rdi
	dec	rcx
	jnz	9b
	mov	byte ptr [rdi], 0
	ret

# The takeover filter: graceful/shim's filter() for AUDIT_ARCH_X86_64,
# struct sock_filter {u16 code; u8 jt, jf; u32 k}. Traps bind, listen and
# shutdown other than SHUT_WR; every other syscall and ABI runs as if
# there were no filter.
	.balign	8
filter:
	.short	0x20;	.byte	0, 0;	.long	4		# ld arch
	.short	0x15;	.byte	0, 6;	.long	0xc000003e	# x86_64? else allow
	.short	0x20;	.byte	0, 0;	.long	0		# ld nr
	.short	0x15;	.byte	5, 0;	.long	49		# bind: notify
	.short	0x15;	.byte	4, 0;	.long	50		# listen: notify
	.short	0x15;	.byte	0, 2;	.long	48		# shutdown? else allow
	.short	0x20;	.byte	0, 0;	.long	24		# ld args[1]
	.short	0x15;	.byte	0, 1;	.long	1		# SHUT_WR: allow
	.short	0x06;	.byte	0, 0;	.long	0x7fff0000	# SECCOMP_RET_ALLOW
	.short	0x06;	.byte	0, 0;	.long	0x7fc00000	# SECCOMP_RET_USER_NOTIF
filterEnd:
noNewPrivs:
	.asciz	"prctl(PR_SET_NO_NEW_PRIVS)"
newListener:
	.asciz	"seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER)"
