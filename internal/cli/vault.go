package cli

import (
	"encoding/hex"
	"io"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/httpapi"
	"github.com/rampartsec/rampart/internal/vault"
)

func (ce *cmdEnv) vaultCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "vault", Short: "Vault administration: signing keys and the key-encryption key"}
	kek := &cobra.Command{Use: "kek", Short: "The key-encryption key that wraps every secret's data key (site administrators)"}
	printKEK := func(k vault.KEKJSON) func(t *tabwriterW) {
		return func(t *tabwriterW) {
			row(t, "KEYRING", k.Kind)
			row(t, "CURRENT VERSION", strconv.Itoa(k.Current))
			row(t, "PENDING RE-WRAPS", strconv.FormatInt(k.Pending, 10))
			vs := make([]string, 0, len(k.ByVersion))
			for v := range k.ByVersion {
				vs = append(vs, v)
			}
			sort.Strings(vs)
			for _, v := range vs {
				row(t, "DATA KEYS UNDER v"+v, strconv.FormatInt(k.ByVersion[v], 10))
			}
			row(t, "LAST ROTATION", k.StartedAt)
			row(t, "RE-WRAPPED", k.FinishedAt)
		}
	}
	status := &cobra.Command{
		Use: "status", Short: "Show the key-encryption key's version and data keys per version", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var k vault.KEKJSON
			if err := c.do(cmd.Context(), "GET", httpapi.Prefix+"/vault/kek", nil, &k); err != nil {
				return err
			}
			return ce.print(k, printKEK(k))
		},
	}
	rotate := &cobra.Command{
		Use: "rotate", Short: "Make a new key-encryption key version and re-wrap every data key under it", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := ce.client()
			if err != nil {
				return err
			}
			var k vault.KEKJSON
			if err := c.do(cmd.Context(), "POST", httpapi.Prefix+"/vault/kek/rotate", nil, &k); err != nil {
				return err
			}
			return ce.print(k, printKEK(k))
		},
	}
	kek.AddCommand(status, rotate)

	key := &cobra.Command{Use: "key", Short: "Signing keys held in the vault (the private key never leaves it)"}
	keysPath := func(scope, name string) (string, error) {
		org, project, err := splitPair(scope, "ORG/PROJECT")
		if err != nil {
			return "", err
		}
		p := httpapi.Prefix + "/orgs/" + esc(org) + "/projects/" + esc(project) + "/signing-keys"
		if name != "" {
			p += "/" + esc(name)
		}
		return p, nil
	}
	var alg string
	create := &cobra.Command{
		Use: "create ORG/PROJECT NAME", Short: "Generate a signing key", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := keysPath(args[0], "")
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var k vault.SigningKeyJSON
			if err := c.do(cmd.Context(), "POST", p, vault.CreateKeyRequest{Name: args[1], Algorithm: alg}, &k); err != nil {
				return err
			}
			return ce.print(k, func(t *tabwriterW) { row(t, "Created signing key", k.Ref, k.Algorithm) })
		},
	}
	create.Flags().StringVar(&alg, "algorithm", vault.AlgECDSAP256, "ecdsa-p256 (cosign's default) or ed25519")
	list := &cobra.Command{
		Use: "list ORG/PROJECT", Short: "List a project's signing keys", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := keysPath(args[0], "")
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var ks []vault.SigningKeyJSON
			if err := c.do(cmd.Context(), "GET", p, nil, &ks); err != nil {
				return err
			}
			return ce.print(ks, func(t *tabwriterW) {
				row(t, "KEY", "ALGORITHM", "CREATED", "BY")
				for _, k := range ks {
					row(t, k.Name, k.Algorithm, k.CreatedAt, k.CreatedBy)
				}
			})
		},
	}
	public := &cobra.Command{
		Use: "public ORG/PROJECT NAME", Short: "Print a signing key's public key (PEM, for cosign verify --key)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := keysPath(args[0], args[1])
			if err != nil {
				return err
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var k vault.SigningKeyJSON
			if err := c.do(cmd.Context(), "GET", p, nil, &k); err != nil {
				return err
			}
			if ce.output == "json" {
				return ce.print(k, nil)
			}
			_, err = io.WriteString(ce.Stdout, k.PublicKey)
			return err
		},
	}
	sign := &cobra.Command{
		Use: "sign ORG/PROJECT NAME DIGEST", Short: "Sign a hex SHA-256 digest (prints the hex signature)", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := keysPath(args[0], args[1])
			if err != nil {
				return err
			}
			if _, err := hex.DecodeString(args[2]); err != nil {
				return usagef("DIGEST must be hex")
			}
			c, err := ce.client()
			if err != nil {
				return err
			}
			var res vault.SignResponse
			if err := c.do(cmd.Context(), "POST", p+"/sign", vault.SignRequest{Digest: args[2]}, &res); err != nil {
				return err
			}
			return ce.print(res, func(t *tabwriterW) { row(t, res.Signature) })
		},
	}
	key.AddCommand(create, list, public, sign)
	cmd.AddCommand(kek, key)
	return cmd
}
