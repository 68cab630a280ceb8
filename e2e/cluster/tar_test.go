package cluster

import (
	"archive/tar"
	"bytes"
)

// tarWithFile makes a one-file layer tarball for crane append.
func tarWithFile(name string, content []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content))})
	tw.Write(content)
	tw.Close()
	return buf.Bytes()
}
