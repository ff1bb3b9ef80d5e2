package archive

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// The layout of a remote (docs/format.md §1):
//
//	<host>/<source>/                 SourceDir
//	  <set id>/                      SetDir: full-… or diff-… (NewSetID)
//	    vol-000001.tar.zst.pgp …     VolumeName
//	    files.jsonl.zst.pgp          FilesName
//	    sigs.zst.pgp                 SigsName (fulls only)
//	    layout.zst.pgp               LayoutName (when captured)
//	    manifest.json.pgp            ManifestName, written last
//	  recover.sh, recover.sh.asc     RecoveryScriptName, RecoveryScriptSigName
//	  backtory, backtory.asc         BinaryName, BinarySigName
//	  backtory.sha256                BinarySHA256Name
//
// No other file of this package builds a remote path.

// Objects beside the sets of a source: the newest recovery script and the
// static binary for a rescue system, each with its detached signature.
const (
	RecoveryScriptName    = "recover.sh"
	RecoveryScriptSigName = "recover.sh.asc"
	BinaryName            = "backtory"
	BinarySigName         = "backtory.asc"
	BinarySHA256Name      = "backtory.sha256"
)

// SourceDir is the directory of a source's sets on the remote.
func SourceDir(host, source string) string { return path.Join(host, source) }

// SetDir is the directory of a set on the remote.
func SetDir(host, source, id string) string { return path.Join(SourceDir(host, source), id) }

// ManifestName returns the object name of a set's manifest; it is never
// compressed.
func ManifestName(sealed bool) string { return "manifest.json" + objectExt(false, sealed) }

// FilesName returns the object name of a set's file table.
func FilesName(compressed, sealed bool) string { return "files.jsonl" + objectExt(compressed, sealed) }

// SigsName returns the object name of a full's block signatures.
func SigsName(compressed, sealed bool) string { return "sigs" + objectExt(compressed, sealed) }

// LayoutName returns the object name of a set's machine layout.
func LayoutName(compressed, sealed bool) string { return "layout" + objectExt(compressed, sealed) }

// VolumeName returns the object name of a set's volume n, counted from 1.
func VolumeName(n int, compressed, sealed bool) string {
	return fmt.Sprintf("vol-%06d.tar%s", n, objectExt(compressed, sealed))
}

// NewSetID returns the id of a set of the given kind started at t: the
// name of its directory.
func NewSetID(kind Kind, t time.Time) string {
	return string(kind) + "-" + t.UTC().Format(setIDTime)
}

// ParseSetID returns the kind and time of a set id, or ok=false.
func ParseSetID(id string) (kind Kind, t time.Time, ok bool) {
	k, ts, found := strings.Cut(id, "-")
	if !found || (Kind(k) != KindFull && Kind(k) != KindDiff) {
		return "", time.Time{}, false
	}
	t, err := time.Parse(setIDTime, ts)
	if err != nil {
		return "", time.Time{}, false
	}
	return Kind(k), t, true
}

// setIDTime is the UTC start time in a set id.
const setIDTime = "20060102T150405Z"

// objectPath is the path of object name in directory dir on the remote.
func objectPath(dir, name string) string { return dir + "/" + name }

// isManifest says whether an object name is a set's manifest.
func isManifest(name string) bool { return name == ManifestName(false) || name == ManifestName(true) }

// objectExt is the object name suffix for this compression and sealing.
func objectExt(compressed, sealed bool) string {
	ext := ""
	if compressed {
		ext = ".zst"
	}
	if sealed {
		ext += ".pgp"
	}
	return ext
}
