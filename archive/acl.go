package archive

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// aclText renders a POSIX ACL xattr (the kernel's binary form, version 2)
// as the text that GNU tar, bsdtar and star read from SCHILY.acl.access
// and SCHILY.acl.default, so that stock tools restore ACLs too. Our own
// restore uses the binary xattr. It returns "" for a form it does not know.
func aclText(b []byte) string {
	if len(b) < 4 || (len(b)-4)%8 != 0 || binary.LittleEndian.Uint32(b) != 2 {
		return ""
	}
	var lines []string
	for b = b[4:]; len(b) >= 8; b = b[8:] {
		tag := binary.LittleEndian.Uint16(b)
		perm := binary.LittleEndian.Uint16(b[2:])
		id := binary.LittleEndian.Uint32(b[4:])
		p := []byte("---")
		if perm&4 != 0 {
			p[0] = 'r'
		}
		if perm&2 != 0 {
			p[1] = 'w'
		}
		if perm&1 != 0 {
			p[2] = 'x'
		}
		var l string
		switch tag {
		case 0x01:
			l = "user::" + string(p)
		case 0x02:
			l = fmt.Sprintf("user:%d:%s", id, p)
		case 0x04:
			l = "group::" + string(p)
		case 0x08:
			l = fmt.Sprintf("group:%d:%s", id, p)
		case 0x10:
			l = "mask::" + string(p)
		case 0x20:
			l = "other::" + string(p)
		default:
			return ""
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}
