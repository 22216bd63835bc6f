package localcluster

import "testing"

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name, in string
		want     int64
		err      bool
	}{
		{"typical", "Name:\tswitchboard\nVmPeak:\t 900 kB\nVmRSS:\t   41234 kB\nRssAnon:\t 3 kB\n", 41234 << 10, false},
		{"missing", "Name:\tx\n", 0, true},
		{"not kB", "VmRSS:\t12 MB\n", 0, true},
		{"not a number", "VmRSS:\tlots kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmRSS(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("parseVmRSS = %d, %v; want %d, error %v", got, err, tt.want, tt.err)
			}
		})
	}
}
