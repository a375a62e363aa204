package grants

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// On-disk framing shared by the log and the snapshot. A file starts with a
// magic line naming its format; then come frames:
//
//	[u32 length][u32 CRC-32C of the 4 length bytes][u32 CRC-32C of the payload][payload]
//
// little-endian. The length has its own checksum so a damaged length is
// told apart from a frame cut short by a crash.
const (
	walMagic      = "AIRLOCK-GRANTS-LOG-1\n"
	snapshotMagic = "AIRLOCK-GRANTS-SNAPSHOT-1\n"
	frameHeader   = 12
	maxFrame      = 1 << 28 // 256 MiB: a larger length is damage, not data
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends payload, framed, to dst.
func appendFrame(dst, payload []byte) []byte {
	var h [frameHeader]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:8], crc32.Checksum(h[0:4], castagnoli))
	binary.LittleEndian.PutUint32(h[8:12], crc32.Checksum(payload, castagnoli))
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// frameScan is the result of reading frames from a file's contents.
type frameScan struct {
	frames [][]byte // payloads, in order (slices of the input)
	// end is the offset just past the last good frame. When end is less
	// than the input length, what follows is a torn tail: the remains of
	// a write the crash cut short, to be truncated away.
	end int
}

// scanFrames reads the frames of data from offset start. A bad frame is a
// torn tail (the only damage a crash can do to an append-only file) when
// nothing good could follow it: a header cut short, a length running past
// the end, a last frame whose checksum fails, or zeros to the end. A bad
// frame with data after it is corruption, and an error naming the offset:
// dropping it would silently lose records that were acknowledged.
func scanFrames(data []byte, start int, file string) (frameScan, error) {
	s := frameScan{end: start}
	off := start
	for off < len(data) {
		rest := data[off:]
		if len(rest) < frameHeader {
			return s, nil
		}
		n := int(binary.LittleEndian.Uint32(rest[0:4]))
		if crc32.Checksum(rest[0:4], castagnoli) != binary.LittleEndian.Uint32(rest[4:8]) || n > maxFrame {
			if allZero(rest) {
				return s, nil
			}
			return s, fmt.Errorf("%s: frame header at offset %d is damaged: %w", file, off, ErrCorrupt)
		}
		if frameHeader+n > len(rest) {
			return s, nil
		}
		payload := rest[frameHeader : frameHeader+n]
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(rest[8:12]) {
			if frameHeader+n == len(rest) {
				return s, nil
			}
			return s, fmt.Errorf("%s: frame at offset %d (%d bytes) fails its checksum and more frames follow: %w", file, off, n, ErrCorrupt)
		}
		s.frames = append(s.frames, payload)
		off += frameHeader + n
		s.end = off
	}
	return s, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
