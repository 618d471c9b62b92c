package fileblob_test

import (
	"testing"

	"github.com/rampartsec/rampart/internal/blob/blobtest"
	"github.com/rampartsec/rampart/internal/blob/fileblob"
)

func TestContract(t *testing.T) {
	s, err := fileblob.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blobtest.Run(t, s)
}
