package hostexec_test

import (
	"testing"

	"github.com/rampartsec/rampart/internal/pipeline/executortest"
	"github.com/rampartsec/rampart/internal/pipeline/hostexec"
)

func TestContract(t *testing.T) { executortest.Run(t, hostexec.New()) }
