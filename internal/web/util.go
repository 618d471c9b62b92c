package web

import (
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"time"
)

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func dayDuration(days int) time.Duration { return time.Duration(days) * 24 * time.Hour }
