package s3

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"

	"github.com/berth-registry/berth/blob"
)

// object reads a blob straight from the body of an S3 GET. minio-go's own
// *Object hands every Read to a goroutine over channels, which at 32 KiB
// per Read costs more CPU than the bytes; a pull of a large layer is the
// registry's hottest byte path, so this reads the response body directly
// and in large blocks.
//
// Seek only moves the offset; the next Read opens a GET from there
// ("Range: bytes=<off>-"), pinned to the ETag seen at Open so a reader
// never mixes two versions (blobs are written once anyway).
type object struct {
	ctx  context.Context
	s    *Store
	key  string
	etag string
	size int64
	off  int64
	body io.ReadCloser
}

var _ blob.Streamer = (*object)(nil)

func (o *object) open() error {
	opts := minio.GetObjectOptions{}
	if err := opts.SetMatchETag(o.etag); err != nil {
		return err
	}
	if o.off > 0 {
		if err := opts.SetRange(o.off, 0); err != nil {
			return err
		}
	}
	body, _, _, err := minio.Core{Client: o.s.c}.GetObject(o.ctx, o.s.bucket, o.key, opts)
	if err != nil {
		return fmt.Errorf("s3 get %s: %w", o.key, err)
	}
	o.body = body
	return nil
}

func (o *object) Read(p []byte) (int, error) {
	if o.off >= o.size {
		return 0, io.EOF
	}
	if o.body == nil {
		if err := o.open(); err != nil {
			return 0, err
		}
	}
	n, err := o.body.Read(p)
	o.off += int64(n)
	if err == io.EOF && o.off < o.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (o *object) Seek(offset int64, whence int) (int64, error) {
	var to int64
	switch whence {
	case io.SeekStart:
		to = offset
	case io.SeekCurrent:
		to = o.off + offset
	case io.SeekEnd:
		to = o.size + offset
	default:
		return 0, errors.New("s3 object: bad whence")
	}
	if to < 0 {
		return 0, errors.New("s3 object: negative position")
	}
	if to != o.off && o.body != nil {
		o.body.Close()
		o.body = nil
	}
	o.off = to
	return to, nil
}

// Stream copies the rest of the blob to w in blocks of 1 MiB.
func (o *object) Stream(w io.Writer) (int64, error) { return blob.CopyStream(w, o) }

func (o *object) Close() error {
	if o.body != nil {
		return o.body.Close()
	}
	return nil
}
