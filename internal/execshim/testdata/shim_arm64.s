// The native exec shim for arm64; the contract is in ../execshim.go.
	.text
	.globl	_start
_start:
	mov	x19, sp			// x19 = &argc; argv at x19+8
	ldr	x20, [x19]		// argc
	cmp	x20, #3			// errfd, path, argv[0] at least
	b.lo	usage
	ldr	x1, [x19, #8]		// argv[0]: the exec-error pipe's fd, decimal
	mov	x21, #0
	mov	x3, #10
1:	ldrb	w2, [x1], #1
	sub	w2, w2, #48
	cmp	w2, #9
	b.hi	2f
	madd	x21, x21, x3, x2
	b	1b
2:	mov	x0, x21			// fcntl(errfd, F_SETFD, FD_CLOEXEC)
	mov	x1, #2
	mov	x2, #1
	mov	x8, #25
	svc	#0
	add	x0, x21, #1		// close(errfd+1): this image's own fd
	mov	x8, #57
	svc	#0
	add	x22, x19, x20, lsl #3	// envp = &argv[argc+1]
	add	x22, x22, #16
	mov	x8, #172		// getpid
	svc	#0
	ldr	x1, [x22]		// envp[0] = "LISTEN_PID=" and 10 spare bytes
	add	x1, x1, #11
	bl	itoa
	ldr	x0, [x19, #16]		// execve(argv[1], &argv[2], envp)
	add	x1, x19, #24
	mov	x2, x22
	mov	x8, #221
	svc	#0
	neg	x23, x0			// -errno
	sub	sp, sp, #64
	mov	x1, sp
	mov	x0, x23
	bl	itoa
	mov	x2, x0			// write(errfd, digits, n)
	mov	x0, x21
	mov	x1, sp
	mov	x8, #64
	svc	#0
	mov	x0, #127		// ENOENT, ENOTDIR: 127; else 126
	cmp	x23, #2
	b.eq	3f
	cmp	x23, #20
	b.eq	3f
usage:	mov	x0, #126
3:	mov	x8, #94			// exit_group
	svc	#0

// itoa writes x0 in decimal at x1, NUL-terminated; returns the length in
// x0. arm64 has no red zone: the digits go in a frame of its own.
itoa:	sub	sp, sp, #32
	add	x2, sp, #32		// end of the digits
	mov	x3, x2
	mov	x4, #10
4:	udiv	x5, x0, x4
	msub	x6, x5, x4, x0		// x0 % 10
	add	x6, x6, #48
	strb	w6, [x3, #-1]!
	mov	x0, x5
	cbnz	x0, 4b
	sub	x0, x2, x3		// length
	mov	x5, x0
5:	ldrb	w6, [x3], #1
	strb	w6, [x1], #1
	subs	x5, x5, #1
	b.ne	5b
	strb	wzr, [x1]
	add	sp, sp, #32
	ret
