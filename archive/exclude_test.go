package archive

import "testing"

func TestExcluder(t *testing.T) {
	tests := []struct {
		pat  string
		path string
		want bool
	}{
		{"/tmp/**", "tmp/a/b", true},
		{"/tmp/**", "tmp", true},
		{"/tmp/**", "var/tmp/a", false},
		{"/tmp", "tmp", true},
		{"*.tmp", "a/b/c.tmp", true},
		{"*.tmp", "c.tmp", true},
		{"*.tmp", "c.tmpx", false},
		{"var/cache/**", "var/cache/apt/x", true},
		{"var/cache/**", "srv/var/cache/x", false},
		{"**/node_modules", "a/b/node_modules", true},
		{"/home/*/.cache", "home/bob/.cache", true},
		{"/home/*/.cache", "home/bob/x/.cache", false},
		{"/home/*/.cache/", "home/bob/.cache", true},
		{"/a/**/z", "a/z", true},
		{"/a/**/z", "a/b/c/z", true},
		{"/a/**/z", "a/b/c/y", false},
	}
	for _, tc := range tests {
		x, err := NewExcluder([]string{tc.pat})
		if err != nil {
			t.Fatal(err)
		}
		if got := x.Match(tc.path); got != tc.want {
			t.Errorf("%q matching %q = %v, want %v", tc.pat, tc.path, got, tc.want)
		}
	}
	if _, err := NewExcluder([]string{"/a/[b"}); err == nil {
		t.Error("malformed pattern accepted")
	}
}

func TestComparePaths(t *testing.T) {
	sorted := []string{".", "a", "a/b", "a/b/c", "a.b", "a0", "b", "b/a"}
	for i := range sorted {
		for j := range sorted {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := ComparePaths(sorted[i], sorted[j]); got != want {
				t.Errorf("ComparePaths(%q, %q) = %d, want %d", sorted[i], sorted[j], got, want)
			}
		}
	}
}
