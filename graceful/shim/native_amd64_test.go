package shim

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/entrypoint/entrypoint/internal/execshim"
)

// The native shim carries its own copy of the takeover filter and of the
// names of the calls it reports, written in assembly: they must be this
// package's, byte for byte, or the two shims would trap different calls.
func TestNativeShimCarriesThisFilter(t *testing.T) {
	img := execshim.Image()
	var prog bytes.Buffer
	for _, ins := range filter() {
		binary.Write(&prog, binary.LittleEndian, ins)
	}
	if prog.Len() != 8*len(filter()) {
		t.Fatalf("encoded %d bytes for %d instructions", prog.Len(), len(filter()))
	}
	if !bytes.Contains(img, prog.Bytes()) {
		t.Errorf("the native shim's image does not contain filter() (% x): regenerate it from a shim_amd64.s that matches", prog.Bytes())
	}
	for _, step := range []string{stepNoNewPrivs, stepNewListener} {
		if !bytes.Contains(img, []byte(step+"\x00")) {
			t.Errorf("the native shim's image does not name %q as the Go shim does", step)
		}
	}
}
