package cli

import (
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/image"
	"github.com/rampartsec/rampart/internal/scan"
)

// Environment variables of rampart image build.
const (
	envRegistryPassword = "RAMPART_REGISTRY_PASSWORD"
	envSourceDateEpoch  = "SOURCE_DATE_EPOCH"
)

// imageBuildOutput is what rampart image build prints.
type imageBuildOutput struct {
	Digest     string           `json:"digest"`
	Platform   string           `json:"platform"`
	Tag        string           `json:"tag,omitempty"`
	Pushed     string           `json:"pushed,omitempty"`
	Referrers  []string         `json:"referrers,omitempty"`
	Signature  string           `json:"signature,omitempty"`
	Layout     string           `json:"layout,omitempty"`
	SBOM       string           `json:"sbom,omitempty"`
	Provenance string           `json:"provenance,omitempty"`
	Materials  []image.Material `json:"materials"`
}

func (ce *cmdEnv) imageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build OCI images without a container runtime",
	}
	var (
		file, tag, layoutDir, target, platform string
		push, insecure                         bool
		buildArgs, bases                       []string
		user, srcRepo, srcCommit, srcRef       string
		invocation, builder                    string
		fromBase, dest, signKey                string
	)
	build := &cobra.Command{
		Use:   "build [flags] CONTEXT",
		Short: "Build an image from a Dockerfile, with its SBOM and SLSA provenance",
		Long: `Builds an OCI image from a Dockerfile subset that needs no container
runtime: ` + image.Supported + `,
multi-stage COPY --from. RUN is refused: run commands as pipeline steps and
COPY their output.

Builds are reproducible: the same context, Dockerfile, arguments and bases
give the same digest ($SOURCE_DATE_EPOCH sets the time written into the
image, default 1970-01-01). Every build gets a CycloneDX SBOM and SLSA v1
provenance: attached as OCI referrers with --push, written into and beside
the layout with --output-layout. Without either, the image is built and
checked, its digest printed, and nothing written.

Bases come from any registry (credentials from the Docker config), or from
local files: --base NAME=oci-layout:DIR[:TAG] or --base NAME=tarball:FILE.
Registry credentials for --push: --registry-user with the password in
$` + envRegistryPassword + `, else the Docker config.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if push && tag == "" {
				return usagef("--push needs --tag")
			}
			if signKey != "" && !push {
				return usagef("--sign-key signs the pushed image: it needs --push")
			}
			opts := image.BuildOptions{ContextDir: args[0], Dockerfile: file, Target: target, Platform: platform}
			if fromBase != "" {
				df, err := image.DirectoryDockerfile(fromBase, dest, nil)
				if err != nil {
					return err
				}
				opts.DockerfileText, opts.Dockerfile = df, "(--from-base "+fromBase+")"
			}
			if len(buildArgs) > 0 {
				opts.BuildArgs = map[string]string{}
			}
			for _, a := range buildArgs {
				k, v, ok := strings.Cut(a, "=")
				if !ok {
					// docker build --build-arg NAME takes the value from the environment.
					if v = ce.Getenv(k); v == "" {
						continue
					}
				}
				opts.BuildArgs[k] = v
			}
			if e := ce.Getenv(envSourceDateEpoch); e != "" {
				sec, err := strconv.ParseInt(e, 10, 64)
				if err != nil || sec < 0 {
					return usagef("$%s must be a number of seconds", envSourceDateEpoch)
				}
				opts.Epoch = time.Unix(sec, 0)
			}
			res := &image.Resolver{Local: map[string]string{}, Insecure: insecure, Keychain: authn.DefaultKeychain}
			for _, b := range bases {
				k, v, ok := strings.Cut(b, "=")
				if !ok || k == "" || !strings.HasPrefix(v, image.PrefixLayout) && !strings.HasPrefix(v, image.PrefixTarball) {
					return usagef("--base wants NAME=oci-layout:DIR[:TAG] or NAME=tarball:FILE, not %q", b)
				}
				res.Local[k] = v
			}
			pushOpts := image.PushOptions{Keychain: authn.DefaultKeychain, Insecure: insecure}
			if user != "" {
				pw := ce.Getenv(envRegistryPassword)
				if pw == "" {
					return usagef("--registry-user needs the password in $%s", envRegistryPassword)
				}
				auth := &authn.Basic{Username: user, Password: pw}
				res.Auth, pushOpts.Auth = auth, auth
			}
			opts.Bases = res

			started := time.Now()
			// The scanner (for the SBOM) compiles its rules while the image
			// builds.
			type scannerResult struct {
				s   *scan.Scanner
				err error
			}
			scanc := make(chan scannerResult, 1)
			go func() {
				s, err := scan.New(ctx, scan.Config{})
				scanc <- scannerResult{s, err}
			}()
			r, err := image.Build(ctx, opts)
			sr := <-scanc
			if err != nil {
				return err
			}
			if sr.err != nil {
				return sr.err
			}
			sc := sr.s
			name := tag
			if name == "" {
				name = args[0]
			}
			ev, err := image.MakeEvidence(ctx, r, image.EvidenceOptions{
				Scanner: sc, Name: name, ToolVersion: version(),
				Source:       image.Source{Repository: srcRepo, Commit: srcCommit, Ref: srcRef},
				BuilderID:    builder,
				InvocationID: invocation,
				Started:      started, Finished: time.Now(),
			})
			if err != nil {
				return err
			}
			out := imageBuildOutput{Digest: r.Digest.String(), Platform: r.Platform.String(), Tag: tag, Materials: r.Materials}
			if out.Materials == nil {
				out.Materials = []image.Material{}
			}
			if layoutDir != "" {
				layoutTag := ""
				if tag != "" {
					layoutTag = tag[strings.LastIndex(tag, ":")+1:]
					if strings.Contains(layoutTag, "/") {
						layoutTag = ""
					}
				}
				if err := image.WriteLayout(layoutDir, layoutTag, r.Image, ev); err != nil {
					return err
				}
				out.Layout = layoutDir
				out.SBOM = layoutDir + "/" + image.LayoutSBOMFile
				out.Provenance = layoutDir + "/" + image.LayoutProvenanceFile
			}
			if push {
				p, err := image.Push(ctx, r.Image, tag, ev, pushOpts)
				if err != nil {
					return err
				}
				out.Pushed = p.Image.String()
				for _, d := range p.Referrers {
					out.Referrers = append(out.Referrers, d.String())
				}
				if signKey != "" {
					pemKey, err := os.ReadFile(signKey)
					if err != nil {
						return apperr.Wrap(err, apperr.Invalid, "cannot read the signing key "+signKey)
					}
					key, err := image.ParseSigningKey(pemKey)
					if err != nil {
						return err
					}
					sig, err := image.Sign(ctx, p.Image, key, pushOpts)
					if err != nil {
						return err
					}
					out.Signature = sig.String()
				}
			}
			return ce.print(out, func(t *tabwriter.Writer) {
				row(t, "DIGEST", out.Digest)
				row(t, "PLATFORM", out.Platform)
				if out.Pushed != "" {
					row(t, "PUSHED", out.Pushed)
					for _, d := range out.Referrers {
						row(t, "REFERRER", d)
					}
					if out.Signature != "" {
						row(t, "SIGNATURE", out.Signature)
					}
				}
				if out.Layout != "" {
					row(t, "LAYOUT", out.Layout)
				}
				for _, m := range out.Materials {
					row(t, "BASE", m.URI+"@"+m.Digest.String())
				}
			})
		},
	}
	fl := build.Flags()
	fl.StringVarP(&file, "file", "f", "Dockerfile", "the Dockerfile, relative to CONTEXT unless absolute")
	fl.StringVarP(&tag, "tag", "t", "", "image reference to push to (registry/repo:tag)")
	fl.BoolVar(&push, "push", false, "push the image and its evidence to --tag")
	fl.StringVar(&layoutDir, "output-layout", "", "write the image and its evidence as an OCI layout in this new directory")
	fl.StringArrayVar(&buildArgs, "build-arg", nil, "NAME=VALUE for an ARG (repeatable); recorded in the provenance, so never a secret")
	fl.StringVar(&fromBase, "from-base", "", "no Dockerfile: copy CONTEXT onto this base image (at --dest)")
	fl.StringVar(&dest, "dest", "/app", "with --from-base: where CONTEXT goes in the image")
	fl.StringVar(&signKey, "sign-key", "", "with --push: sign the image in cosign's format with this PEM ECDSA P-256 key")
	fl.StringVar(&target, "target", "", "stage to build (default the last)")
	fl.StringVar(&platform, "platform", "", "os/arch[/variant] (default linux and this machine's architecture)")
	fl.StringArrayVar(&bases, "base", nil, "NAME=oci-layout:DIR[:TAG] or NAME=tarball:FILE: where FROM NAME comes from (repeatable)")
	fl.BoolVar(&insecure, "insecure-registry", false, "talk plain HTTP to registries")
	fl.StringVar(&user, "registry-user", "", "registry user (password in $"+envRegistryPassword+")")
	fl.StringVar(&srcRepo, "source-repo", "", "source repository URL, for the provenance")
	fl.StringVar(&srcCommit, "source-commit", "", "source commit, for the provenance")
	fl.StringVar(&srcRef, "source-ref", "", "source ref, for the provenance")
	fl.StringVar(&invocation, "invocation-id", "", "the pipeline run building the image, for the provenance")
	fl.StringVar(&builder, "builder-id", "", "the builder's identity, for the provenance (default "+image.DefaultBuilderID+")")
	cmd.AddCommand(build)
	return cmd
}
