package realm

import (
	"context"
	"crypto/tls"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/apperr"
)

// message is a plain-text mail to one end user.
type message struct {
	To      string
	Subject string
	Body    string
}

// render writes the message in RFC 5322 form with CRLF line ends
// (net/smtp's DATA writer does the dot-stuffing).
func (m message) render(from string, now time.Time, id string) []byte {
	var b strings.Builder
	h := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	h("From", from)
	h("To", m.To)
	h("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h("Date", now.UTC().Format(time.RFC1123Z))
	h("Message-ID", "<"+id+"@rampart.invalid>")
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "8bit")
	h("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	for line := range strings.SplitSeq(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n") {
		b.WriteString(line + "\r\n")
	}
	return []byte(b.String())
}

// send delivers m through the realm's SMTP server. Errors name the
// server but never the credentials.
func (s *Service) send(ctx context.Context, r Realm, m message) error {
	unavailable := func(err error) error {
		s.log.WarnContext(ctx, "realm mail not sent", "realm", r.ID, "smtp_host", r.SMTP.Host, "error", err)
		return apperr.Wrap(err, apperr.Unavailable, "the e-mail could not be sent; try again later")
	}
	pass, err := s.smtpPassword(ctx, r)
	if err != nil {
		return err
	}
	from, err := mail.ParseAddress(r.SMTP.From)
	if err != nil {
		return unavailable(fmt.Errorf("from address: %w", err))
	}
	id, err := randomToken(12)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	addr := net.JoinHostPort(r.SMTP.Host, strconv.Itoa(r.SMTP.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return unavailable(err)
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	tlsConf := &tls.Config{ServerName: r.SMTP.Host, MinVersion: tls.VersionTLS12}
	if r.SMTP.TLS == TLSImplicit {
		tc := tls.Client(conn, tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return unavailable(err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, r.SMTP.Host)
	if err != nil {
		conn.Close()
		return unavailable(err)
	}
	defer c.Close()
	if err := c.Hello("rampart"); err != nil {
		return unavailable(err)
	}
	if r.SMTP.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return unavailable(fmt.Errorf("%s does not offer STARTTLS (set smtp tls to none to send in the clear)", addr))
		}
		if err := c.StartTLS(tlsConf); err != nil {
			return unavailable(err)
		}
	}
	if r.SMTP.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", r.SMTP.Username, pass, r.SMTP.Host)); err != nil {
			return unavailable(fmt.Errorf("authenticate as %s: %w", r.SMTP.Username, err))
		}
	}
	if err := c.Mail(from.Address); err != nil {
		return unavailable(err)
	}
	if err := c.Rcpt(m.To); err != nil {
		return unavailable(err)
	}
	w, err := c.Data()
	if err != nil {
		return unavailable(err)
	}
	if _, err := w.Write(m.render(r.SMTP.From, s.now(), id)); err != nil {
		return unavailable(err)
	}
	if err := w.Close(); err != nil {
		return unavailable(err)
	}
	if err := c.Quit(); err != nil {
		return unavailable(err)
	}
	return nil
}
