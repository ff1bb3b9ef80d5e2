package remote

import "time"

// SetFTPBackoff shortens the pause between FTP retries for a test and
// returns a function that restores it.
func SetFTPBackoff(d time.Duration) (restore func()) {
	old := ftpBackoff
	ftpBackoff = d
	return func() { ftpBackoff = old }
}

// SetSFTPBackoff shortens the pause between SFTP retries for a test and
// returns a function that restores it.
func SetSFTPBackoff(d time.Duration) (restore func()) {
	old := sftpBackoff
	sftpBackoff = d
	return func() { sftpBackoff = old }
}
