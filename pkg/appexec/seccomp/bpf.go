package seccomp

import (
	"fmt"
	"sort"

	"golang.org/x/sys/unix"
)

// rule gives a syscall its action when every condition holds (always,
// without conditions).
type rule struct {
	conds  []cond
	action uint32
}

// cond compares one 64-bit syscall argument, as libseccomp's SCMP_CMP_*
// do: unsigned, all 64 bits. For opMaskedEq, a is the mask and b the
// value the masked argument must equal.
type cond struct {
	arg  uint
	op   compareOp
	a, b uint64
}

type compareOp int

const (
	opEq compareOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
	opMaskedEq
)

// The offsets of struct seccomp_data's fields. Arguments are 64-bit
// words; both architectures with syscall tables here are little-endian,
// so the low half comes first.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// maxInsns is the kernel's limit on a filter's length (BPF_MAXINSNS).
const maxInsns = 4096

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

// compile builds the classic BPF program of a policy: def for every
// syscall without a rule, and for each syscall number its rules, tried
// in order. A syscall made with another ABI (32-bit calls on x86-64, the
// x32 ABI) kills the process: the rules' numbers would mean other calls
// there.
func compile(def uint32, rules map[uint32][]rule) ([]unix.SockFilter, error) {
	prog := []unix.SockFilter{
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch),
		jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, auditArch, 1, 0),
		stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_KILL_PROCESS),
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr),
	}
	if x32Bit != 0 {
		prog = append(prog,
			jump(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, x32Bit, 0, 1),
			stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_KILL_PROCESS))
	}
	nums := make([]uint32, 0, len(rules))
	for n := range rules {
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	for _, n := range nums {
		rs := rules[n]
		if len(rs) == 1 && len(rs[0].conds) == 0 {
			// The common case in two instructions: compare, return.
			prog = append(prog,
				jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, n, 0, 1),
				stmt(unix.BPF_RET|unix.BPF_K, rs[0].action))
			continue
		}
		// A block that ends in a return whatever its rules say, so
		// that the only way past it is the unconditional jump over it
		// (conditional jumps reach at most 255 instructions ahead).
		var body []unix.SockFilter
		final := false
		for _, r := range rs {
			body = append(body, r.emit()...)
			if len(r.conds) == 0 {
				final = true
				break
			}
		}
		if !final {
			body = append(body, stmt(unix.BPF_RET|unix.BPF_K, def))
		}
		prog = append(prog,
			jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, n, 1, 0),
			stmt(unix.BPF_JMP|unix.BPF_JA, uint32(len(body))))
		prog = append(prog, body...)
	}
	prog = append(prog, stmt(unix.BPF_RET|unix.BPF_K, def))
	if len(prog) > maxInsns {
		return nil, fmt.Errorf("seccomp program of %d instructions is too long (the kernel takes %d)", len(prog), maxInsns)
	}
	return prog, nil
}

// failJump marks a jump offset to be set to the rule's end: the
// instruction after its return, where the next rule starts.
const failJump = 0xff

// emit compiles one rule: its conditions, each jumping to the rule's end
// when it fails, then the return of its action.
func (r rule) emit() []unix.SockFilter {
	var out []unix.SockFilter
	for _, c := range r.conds {
		out = append(out, c.emit()...)
	}
	out = append(out, stmt(unix.BPF_RET|unix.BPF_K, r.action))
	end := len(out)
	for i := range out {
		if out[i].Code&0x07 != unix.BPF_JMP || out[i].Code&0xf0 == unix.BPF_JA {
			continue
		}
		if out[i].Jt == failJump {
			out[i].Jt = uint8(end - i - 1)
		}
		if out[i].Jf == failJump {
			out[i].Jf = uint8(end - i - 1)
		}
	}
	return out
}

// emit compiles a comparison of the argument's two 32-bit halves; a jump
// of failJump leaves the rule, one past the last instruction goes on to
// the next condition.
func (c cond) emit() []unix.SockFilter {
	lo := stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, uint32(offArgs+8*c.arg))
	hi := stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, uint32(offArgs+8*c.arg+4))
	ahi, alo := uint32(c.a>>32), uint32(c.a)
	j := func(op uint16, k uint32, jt, jf uint8) unix.SockFilter {
		return jump(unix.BPF_JMP|op|unix.BPF_K, k, jt, jf)
	}
	switch c.op {
	case opEq:
		return []unix.SockFilter{hi, j(unix.BPF_JEQ, ahi, 0, failJump), lo, j(unix.BPF_JEQ, alo, 0, failJump)}
	case opNe:
		// A different high half settles it; otherwise the low half.
		return []unix.SockFilter{hi, j(unix.BPF_JEQ, ahi, 0, 2), lo, j(unix.BPF_JEQ, alo, failJump, 0)}
	case opGt, opGe:
		low := uint16(unix.BPF_JGT)
		if c.op == opGe {
			low = unix.BPF_JGE
		}
		return []unix.SockFilter{hi, j(unix.BPF_JGT, ahi, 3, 0), j(unix.BPF_JEQ, ahi, 0, failJump),
			lo, j(low, alo, 0, failJump)}
	case opLt, opLe:
		// a < b is not a >= b: the same jumps with the outcomes swapped.
		low := uint16(unix.BPF_JGE)
		if c.op == opLe {
			low = unix.BPF_JGT
		}
		return []unix.SockFilter{hi, j(unix.BPF_JGE, ahi, 0, 3), j(unix.BPF_JEQ, ahi, 0, failJump),
			lo, j(low, alo, failJump, 0)}
	case opMaskedEq:
		bhi, blo := uint32(c.b>>32), uint32(c.b)
		and := func(k uint32) unix.SockFilter { return stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, k) }
		return []unix.SockFilter{hi, and(ahi), j(unix.BPF_JEQ, bhi, 0, failJump),
			lo, and(alo), j(unix.BPF_JEQ, blo, 0, failJump)}
	}
	panic(fmt.Sprintf("seccomp: unknown comparison %d", c.op))
}
