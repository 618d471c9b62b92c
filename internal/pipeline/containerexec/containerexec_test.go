package containerexec_test

import (
	"os"
	"testing"

	"github.com/rampartsec/rampart/internal/pipeline/containerexec"
	"github.com/rampartsec/rampart/internal/pipeline/executortest"
	"github.com/rampartsec/rampart/internal/testenv"
)

func TestContract(t *testing.T) {
	testenv.LookPath(t, "runc")
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root (runc needs it)")
	}
	e, err := containerexec.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	executortest.Run(t, e)
}
