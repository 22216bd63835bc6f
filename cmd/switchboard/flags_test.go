package main

import (
	"flag"
	"strings"
	"testing"
)

func TestFlagsFromEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    int // capacity
		wantTTL int
		wantErr string
	}{
		{name: "default", want: 100, wantTTL: 5},
		{name: "environment", env: map[string]string{"SWITCHBOARD_CAPACITY": "7"}, want: 7, wantTTL: 5},
		{name: "command line wins", env: map[string]string{"SWITCHBOARD_CAPACITY": "7"}, args: []string{"--capacity", "9"}, want: 9, wantTTL: 5},
		{name: "dashes become underscores", env: map[string]string{"SWITCHBOARD_DNS_TTL": "3"}, want: 100, wantTTL: 3},
		{name: "bad value", env: map[string]string{"SWITCHBOARD_CAPACITY": "many"}, wantErr: "SWITCHBOARD_CAPACITY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			capacity := fs.Int("capacity", 100, "")
			ttl := fs.Int("dns-ttl", 5, "")
			err := parseFlags(fs, tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *capacity != tt.want || *ttl != tt.wantTTL {
				t.Errorf("capacity, dns-ttl = %d, %d; want %d, %d", *capacity, *ttl, tt.want, tt.wantTTL)
			}
		})
	}
}

func TestClientTarget(t *testing.T) {
	tests := []struct {
		service, resolver, want string
	}{
		{"127.0.0.1:7070", "", "127.0.0.1:7070"},
		{"a:1,b:2", "", "a:1,b:2"},
		{"chat.local", "", "dns:chat.local"},
		{"chat.local", "127.0.0.1:5353", "dns://127.0.0.1:5353/chat.local"},
		{"dns://10.0.0.1:53/x", "127.0.0.1:5353", "dns://10.0.0.1:53/x"},
	}
	for _, tt := range tests {
		f := clientFlags{service: tt.service, resolver: tt.resolver}
		if got := f.target(); got != tt.want {
			t.Errorf("target(%q, %q) = %q, want %q", tt.service, tt.resolver, got, tt.want)
		}
	}
}
