package shim

const (
	supported  = true
	auditArch  = 0xc00000b7 // AUDIT_ARCH_AARCH64
	sysSeccomp = 277
)
