package shim

const (
	supported  = true
	auditArch  = 0xc000003e // AUDIT_ARCH_X86_64
	sysSeccomp = 317
)
