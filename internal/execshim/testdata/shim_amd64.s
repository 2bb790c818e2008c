.intel_syntax noprefix
.globl _start
_start:
	mov	r12, rsp		# r12 = &argc; argv at r12+8
	mov	rbx, [r12]		# argc
	cmp	rbx, 3			# errfd, path, argv[0] at least
	jb	usage
	mov	rsi, [r12+8]		# argv[0]: the exec-error pipe's fd, decimal
	xor	r13d, r13d
1:	movzx	eax, byte ptr [rsi]
	sub	eax, '0'
	cmp	eax, 9
	ja	2f
	imul	r13, r13, 10
	add	r13, rax
	inc	rsi
	jmp	1b
2:	mov	eax, 72			# fcntl(errfd, F_SETFD, FD_CLOEXEC)
	mov	rdi, r13
	mov	esi, 2
	mov	edx, 1
	syscall
	mov	eax, 3			# close(errfd+1): this image's own fd
	lea	rdi, [r13+1]
	syscall
	lea	r14, [r12+rbx*8+16]	# envp = &argv[argc+1]
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
3:	mov	eax, 231		# exit_group
	syscall

# itoa writes rax in decimal at rdi, NUL-terminated; returns the length
# in rax. A leaf: its digits go to the red zone below rsp.
itoa:	lea	rsi, [rsp-8]
	mov	r8, rsi
	mov	ecx, 10
4:	xor	edx, edx
	div	rcx
	add	dl, '0'
	dec	rsi
	mov	[rsi], dl
	test	rax, rax
	jnz	4b
	mov	rax, r8
	sub	rax, rsi
	mov	rcx, rax
5:	mov	dl, [rsi]
	mov	[rdi], dl
	inc	rsi
	inc	rdi
	dec	rcx
	jnz	5b
	mov	byte ptr [rdi], 0
	ret
