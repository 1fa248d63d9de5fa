//go:build !unix

package cli

import (
	"io"
	"os"
)

// openSource opens the source at path for reading.
func openSource(path string, _ os.FileMode) (io.ReadCloser, error) {
	return os.Open(path)
}
