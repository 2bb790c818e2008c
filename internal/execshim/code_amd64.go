package execshim

// machine is EM_X86_64.
const machine = 62

// code is testdata/shim_amd64.s assembled by GNU as (TestCodeIsTheSource
// checks that); the disassembly is objdump's.
const code = "" +
	// _start:
	"\x49\x89\xe4" + // 00  mov r12,rsp
	"\x49\x8b\x1c\x24" + // 03  mov rbx,[r12]
	"\x48\x83\xfb\x03" + // 07  cmp rbx,0x3
	"\x0f\x82\x9d\x00\x00\x00" + // 0b  jb ae <usage>
	"\x49\x8b\x74\x24\x08" + // 11  mov rsi,[r12+0x8]
	"\x45\x31\xed" + // 16  xor r13d,r13d
	"\x0f\xb6\x06" + // 19  movzx eax,byte [rsi]
	"\x83\xe8\x30" + // 1c  sub eax,0x30
	"\x83\xf8\x09" + // 1f  cmp eax,0x9
	"\x77\x0c" + // 22  ja 30 <_start+0x30>
	"\x4d\x6b\xed\x0a" + // 24  imul r13,r13,0xa
	"\x49\x01\xc5" + // 28  add r13,rax
	"\x48\xff\xc6" + // 2b  inc rsi
	"\xeb\xe9" + // 2e  jmp 19 <_start+0x19>
	"\xb8\x48\x00\x00\x00" + // 30  mov eax,0x48
	"\x4c\x89\xef" + // 35  mov rdi,r13
	"\xbe\x02\x00\x00\x00" + // 38  mov esi,0x2
	"\xba\x01\x00\x00\x00" + // 3d  mov edx,0x1
	"\x0f\x05" + // 42  syscall
	"\xb8\x03\x00\x00\x00" + // 44  mov eax,0x3
	"\x49\x8d\x7d\x01" + // 49  lea rdi,[r13+0x1]
	"\x0f\x05" + // 4d  syscall
	"\x4d\x8d\x74\xdc\x10" + // 4f  lea r14,[r12+rbx*8+0x10]
	"\xb8\x27\x00\x00\x00" + // 54  mov eax,0x27
	"\x0f\x05" + // 59  syscall
	"\x49\x8b\x3e" + // 5b  mov rdi,[r14]
	"\x48\x83\xc7\x0b" + // 5e  add rdi,0xb
	"\xe8\x53\x00\x00\x00" + // 62  call ba <itoa>
	"\xb8\x3b\x00\x00\x00" + // 67  mov eax,0x3b
	"\x49\x8b\x7c\x24\x10" + // 6c  mov rdi,[r12+0x10]
	"\x49\x8d\x74\x24\x18" + // 71  lea rsi,[r12+0x18]
	"\x4c\x89\xf2" + // 76  mov rdx,r14
	"\x0f\x05" + // 79  syscall
	"\x48\xf7\xd8" + // 7b  neg rax
	"\x49\x89\xc7" + // 7e  mov r15,rax
	"\x48\x83\xec\x40" + // 81  sub rsp,0x40
	"\x48\x89\xe7" + // 85  mov rdi,rsp
	"\xe8\x2d\x00\x00\x00" + // 88  call ba <itoa>
	"\x48\x89\xc2" + // 8d  mov rdx,rax
	"\xb8\x01\x00\x00\x00" + // 90  mov eax,0x1
	"\x4c\x89\xef" + // 95  mov rdi,r13
	"\x48\x89\xe6" + // 98  mov rsi,rsp
	"\x0f\x05" + // 9b  syscall
	"\xbf\x7f\x00\x00\x00" + // 9d  mov edi,0x7f
	"\x49\x83\xff\x02" + // a2  cmp r15,0x2
	"\x74\x0b" + // a6  je b3 <usage+0x5>
	"\x49\x83\xff\x14" + // a8  cmp r15,0x14
	"\x74\x05" + // ac  je b3 <usage+0x5>
	// usage:
	"\xbf\x7e\x00\x00\x00" + // ae  mov edi,0x7e
	"\xb8\xe7\x00\x00\x00" + // b3  mov eax,0xe7
	"\x0f\x05" + // b8  syscall
	// itoa:
	"\x48\x8d\x74\x24\xf8" + // ba  lea rsi,[rsp-0x8]
	"\x49\x89\xf0" + // bf  mov r8,rsi
	"\xb9\x0a\x00\x00\x00" + // c2  mov ecx,0xa
	"\x31\xd2" + // c7  xor edx,edx
	"\x48\xf7\xf1" + // c9  div rcx
	"\x80\xc2\x30" + // cc  add dl,0x30
	"\x48\xff\xce" + // cf  dec rsi
	"\x88\x16" + // d2  mov byte [rsi],dl
	"\x48\x85\xc0" + // d4  test rax,rax
	"\x75\xee" + // d7  jne c7 <itoa+0xd>
	"\x4c\x89\xc0" + // d9  mov rax,r8
	"\x48\x29\xf0" + // dc  sub rax,rsi
	"\x48\x89\xc1" + // df  mov rcx,rax
	"\x8a\x16" + // e2  mov dl,byte [rsi]
	"\x88\x17" + // e4  mov byte [rdi],dl
	"\x48\xff\xc6" + // e6  inc rsi
	"\x48\xff\xc7" + // e9  inc rdi
	"\x48\xff\xc9" + // ec  dec rcx
	"\x75\xf1" + // ef  jne e2 <itoa+0x28>
	"\xc6\x07\x00" + // f1  mov byte [rdi],0x0
	"\xc3" // f4  ret
