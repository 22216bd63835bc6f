package promtext

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValues(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 3028
go_gc_duration_seconds{quantile="0.5"} 0.0001
go_gc_duration_seconds_count 7
go_memstats_heap_inuse_bytes 1.7604608e+07
process_resident_memory_bytes 6.4e+07 1700000000000
switchboard_users 3000
`
	got, err := Values(strings.NewReader(text), "go_goroutines", "go_gc_duration_seconds_count", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes", "absent")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"go_goroutines": 3028, "go_gc_duration_seconds_count": 7,
		"go_memstats_heap_inuse_bytes": 17604608, "process_resident_memory_bytes": 64e6,
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("Values (-got +want):\n%s", diff)
	}
	if _, err := Values(strings.NewReader("switchboard_users lots\n"), "switchboard_users"); err == nil {
		t.Error("a value that does not parse was taken")
	}
}
