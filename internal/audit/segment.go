package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// A spool segment is a file named <seq>.open while the writer appends to
// it and <seq>.seg once it is sealed (fsynced and closed), seq being 16
// decimal digits so names sort in order. It starts with segMagic, then
// holds records framed as
//
//	uint32 LE payload length | uint32 LE CRC-32C of the payload | payload
//
// where the payload is appendRecord's encoding. A crash can leave a torn
// last frame; readSegment stops at the first frame that is short or fails
// its CRC and reports how many bytes it dropped.

const (
	segMagic     = "ALSPOOL1"
	frameHeader  = 8
	maxFrameSize = 64 << 20 // far above any record (payloads are capped); guards corrupt lengths
	sealedExt    = ".seg"
	openExt      = ".open"
	// futureExt names a sealed segment holding records of a format newer
	// than the airlock that read it: it is kept, not shipped, and shipped
	// by the first airlock that reads the format (every start retries it).
	futureExt = ".future"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends a framed record to b: it reserves the header,
// encodes r after it, then fills the header in.
func appendFrame(b []byte, r Record) []byte {
	start := len(b)
	b = append(b, make([]byte, frameHeader)...)
	b = appendRecord(b, r)
	payload := b[start+frameHeader:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, crcTable))
	return b
}

// segmentFile names a segment file.
func segmentFile(dir string, seq uint64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%016d%s", seq, ext))
}

// segmentInfo is one segment on disk.
type segmentInfo struct {
	seq  uint64
	path string
	size int64
	open bool // left as .open by a previous run
}

// listSegments returns the segments in dir, oldest first. Other files are
// ignored.
func listSegments(dir string) ([]segmentInfo, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit spool: listing %s: %w", dir, err)
	}
	var segs []segmentInfo
	for _, e := range ents {
		name := e.Name()
		ext := filepath.Ext(name)
		if ext != sealedExt && ext != openExt && ext != futureExt {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, ext), 10, 64)
		if err != nil || e.IsDir() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("audit spool: %s: %w", name, err)
		}
		segs = append(segs, segmentInfo{seq: seq, path: filepath.Join(dir, name), size: fi.Size(), open: ext == openExt})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].seq < segs[j].seq })
	return segs, nil
}

// errBadMagic says a file is not a spool segment of this format.
var errBadMagic = errors.New("not a spool segment (bad magic)")

// parseSegment splits a segment's bytes into record payloads (aliasing
// data). dropped is the number of bytes after the last good frame: a torn
// tail after a crash, or corruption.
func parseSegment(data []byte) (payloads [][]byte, dropped int, err error) {
	return parseSegmentInto(data, nil)
}

// parseSegmentInto is parseSegment appending the payloads to payloads
// (the shipper passes the last segment's, emptied, to reuse it).
func parseSegmentInto(data []byte, payloads [][]byte) (_ [][]byte, dropped int, err error) {
	if len(data) < len(segMagic) {
		// A crash right after creating the file can leave it shorter than
		// its magic: it holds no record.
		return payloads, len(data), nil
	}
	if string(data[:len(segMagic)]) != segMagic {
		return payloads, 0, errBadMagic
	}
	b := data[len(segMagic):]
	for len(b) > 0 {
		if len(b) < frameHeader {
			break
		}
		n := binary.LittleEndian.Uint32(b)
		sum := binary.LittleEndian.Uint32(b[4:])
		if n == 0 || n > maxFrameSize || int(n) > len(b)-frameHeader {
			break
		}
		p := b[frameHeader : frameHeader+int(n)]
		if crc32.Checksum(p, crcTable) != sum {
			break
		}
		payloads = append(payloads, p)
		b = b[frameHeader+int(n):]
	}
	return payloads, len(b), nil
}
