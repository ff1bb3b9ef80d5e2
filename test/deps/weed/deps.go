//go:build tools

// Package weed only pins SeaweedFS in this wrapper module's build list; its
// command line program is github.com/seaweedfs/seaweedfs/weed (a main package,
// which cannot be imported), built by test/deps/weed.sh.
package weed

import _ "github.com/seaweedfs/seaweedfs/weed/command"
