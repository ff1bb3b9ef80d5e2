// A wrapper module that builds SeaweedFS's weed for the S3 tests
// (internal/s3test). `go install` refuses github.com/seaweedfs/seaweedfs
// because its go.mod has a replace directive; a main module that requires it
// and repeats that replace builds its weed package. test/deps/weed.sh runs
// `go build github.com/seaweedfs/seaweedfs/weed` here.
module backtory.test/weed

go 1.25

require github.com/seaweedfs/seaweedfs v0.0.0-20261109003541-7506e5f91cd6

replace github.com/tyler-smith/go-bip39 => github.com/cosmos/go-bip39 v1.0.0
