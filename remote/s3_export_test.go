package remote

// S3Transient is s3Transient, for the tests of package remote_test.
var S3Transient = s3Transient
