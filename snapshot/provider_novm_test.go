//go:build !vmtest

package snapshot

// vmBeds is empty on the host: the ZFS and LVM beds need the VM
// (provider_vm_test.go, -tags vmtest).
var vmBeds []namedBed
