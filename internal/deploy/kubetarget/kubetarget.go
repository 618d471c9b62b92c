// Package kubetarget is deploy's Kubernetes target: it turns a release
// into a Deployment, a Service and Secrets, applies them with
// server-side apply (client-go) in the environment's one namespace,
// through the environment's service connection (a namespaced service
// account's token), watches the rollout and rolls back to the previous
// release when it fails.
//
// Objects are named after the project (a DNS label) and labelled
// app.kubernetes.io/name and app.kubernetes.io/managed-by=rampart; the
// Deployment carries the release's number and digest as annotations.
// Pods run as a non-root user with a read-only root filesystem, no
// privilege escalation, every capability dropped and the runtime's
// default seccomp profile; secret references become a Secret the
// containers read through secretKeyRef, so values never appear in the
// Deployment. Kubernetes rolls pods itself: the recreate strategy maps
// to Recreate, every other strategy to RollingUpdate (one extra pod at a
// time, none unavailable); gateway weights do not apply here.
//
// A release may instead carry the project's own manifests
// (Release.Config.Manifests): they are applied as they are, with
// ${IMAGE} replaced by the image by digest, every object put in the
// environment's namespace and cluster-scoped kinds refused; the
// Deployment named like the project is the one whose rollout is watched.
//
// Before it changes anything the target checks, with a
// SelfSubjectAccessReview, that the connection's token cannot list
// namespaces cluster-wide: a cluster-admin credential is refused.
package kubetarget

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	k8serrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsac "k8s.io/client-go/applyconfigurations/apps/v1"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"
	metaac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/deploy"
)

// FieldManager is the server-side apply field manager Rampart uses.
const FieldManager = "rampart-deploy"

// PullAuth returns registry credentials for an image (Rampart's
// registry: a token as password); ok false means no pull secret.
type PullAuth func(ctx context.Context, image string) (username string, password deploy.Value, ok bool)

// Target deploys to Kubernetes.
type Target struct {
	Logger *slog.Logger
	// PullAuth gives the pull secret's credentials (nil: none).
	PullAuth PullAuth
	// Poll is how often rollout status is read (default 500ms).
	Poll time.Duration
}

var _ deploy.Target = (*Target)(nil)

// clients are the typed and dynamic clients of one connection.
type clients struct {
	*kubernetes.Clientset
	dyn dynamic.Interface
}

func (t *Target) client(conn *deploy.Connection) (*clients, error) {
	if conn == nil || conn.Token == "" {
		return nil, apperr.E(apperr.Invalid, "the environment has no service connection with a token")
	}
	cfg := &rest.Config{Host: conn.Server, BearerToken: string(conn.Token), UserAgent: "rampart-deploy", Timeout: 30 * time.Second,
		TLSClientConfig: rest.TLSClientConfig{CAData: []byte(conn.CACert)}, QPS: 20, Burst: 40}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, "bad service connection")
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Invalid, "bad service connection")
	}
	return &clients{Clientset: cs, dyn: dyn}, nil
}

// checkLeastPrivilege refuses tokens that may list namespaces
// cluster-wide.
func checkLeastPrivilege(ctx context.Context, cs *clients) error {
	r, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{
		Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{Verb: "list", Resource: "namespaces"}},
	}, metav1.CreateOptions{})
	if err != nil {
		return unavailable("check the service connection's rights", err)
	}
	if r.Status.Allowed {
		return apperr.E(apperr.Forbidden, "the service connection's token may list every namespace: give Rampart a service account limited to the environment's namespace, not a cluster-wide credential")
	}
	return nil
}

func unavailable(what string, err error) error {
	msg := err.Error()
	if se, ok := err.(k8serrors.APIStatus); ok {
		msg = se.Status().Message
	}
	return apperr.Wrap(err, apperr.Unavailable, what+": "+truncate(msg, 300))
}

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// Name is the objects' name for a project: a DNS label.
func Name(project string) string {
	n := strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(project), "-"), "-")
	if len(n) > 40 {
		n = strings.Trim(n[:40], "-")
	}
	if n == "" || n[0] < 'a' {
		n = "app-" + n
	}
	return n
}

const (
	annRelease = "rampart.dev/release"
	annDigest  = "rampart.dev/digest"
	annID      = "rampart.dev/release-id"
)

// apply applies the release's objects and returns the Deployment's
// generation after the apply.
func (t *Target) apply(ctx context.Context, cs *clients, p deploy.Plan, rel deploy.Release, secrets map[string]deploy.Value) (int64, error) {
	ns := p.Connection.Namespace
	name := Name(p.Scope.Project)
	labels := map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "rampart", "rampart.dev/environment": p.Env.Name}
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if rel.Config.Manifests != "" {
		return t.applyManifests(ctx, cs, p, rel)
	}

	secretName := name + "-secrets"
	data := map[string][]byte{}
	for _, ref := range rel.SecretRefs {
		data[ref.Env] = []byte(secrets[ref.Env])
	}
	if _, err := cs.CoreV1().Secrets(ns).Apply(ctx, coreac.Secret(secretName, ns).WithLabels(labels).
		WithType(corev1.SecretTypeOpaque).WithData(data), opts); err != nil {
		return 0, unavailable("apply Secret "+secretName, err)
	}
	var pullSecrets []*coreac.LocalObjectReferenceApplyConfiguration
	if t.PullAuth != nil {
		if user, pw, ok := t.PullAuth(ctx, rel.Image); ok {
			host, _, _ := strings.Cut(rel.Image, "/")
			auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + string(pw)))
			cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"auth": auth}}})
			if _, err := cs.CoreV1().Secrets(ns).Apply(ctx, coreac.Secret(name+"-pull", ns).WithLabels(labels).
				WithType(corev1.SecretTypeDockerConfigJson).WithData(map[string][]byte{corev1.DockerConfigJsonKey: cfg}), opts); err != nil {
				return 0, unavailable("apply the pull secret", err)
			}
			pullSecrets = append(pullSecrets, coreac.LocalObjectReference().WithName(name+"-pull"))
		}
	}

	env := []*coreac.EnvVarApplyConfiguration{coreac.EnvVar().WithName("PORT").WithValue(strconv.Itoa(p.Env.Target.Port))}
	keys := make([]string, 0, len(rel.Config.Env))
	for k := range rel.Config.Env {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for _, k := range keys {
		env = append(env, coreac.EnvVar().WithName(k).WithValue(rel.Config.Env[k]))
	}
	for _, ref := range rel.SecretRefs {
		env = append(env, coreac.EnvVar().WithName(ref.Env).WithValueFrom(coreac.EnvVarSource().
			WithSecretKeyRef(coreac.SecretKeySelector().WithName(secretName).WithKey(ref.Env))))
	}
	tgt := p.Env.Target
	limits := corev1.ResourceList{
		corev1.ResourceMemory: *resource.NewQuantity(tgt.MemoryBytes, resource.BinarySI),
		corev1.ResourceCPU:    *resource.NewMilliQuantity(tgt.CPUMillis, resource.DecimalSI),
	}
	ctr := coreac.Container().WithName("app").WithImage(rel.Ref()).WithEnv(env...).
		WithPorts(coreac.ContainerPort().WithName("http").WithContainerPort(int32(tgt.Port))).
		WithReadinessProbe(coreac.Probe().WithHTTPGet(coreac.HTTPGetAction().WithPath(tgt.HealthPath).WithPort(intstr.FromInt32(int32(tgt.Port)))).
			WithPeriodSeconds(5)).
		WithResources(coreac.ResourceRequirements().WithLimits(limits)).
		WithSecurityContext(coreac.SecurityContext().WithRunAsNonRoot(true).WithRunAsUser(65534).WithAllowPrivilegeEscalation(false).
			WithReadOnlyRootFilesystem(true).WithCapabilities(coreac.Capabilities().WithDrop("ALL")).
			WithSeccompProfile(coreac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault)))
	if len(rel.Config.Command) > 0 {
		ctr = ctr.WithCommand(rel.Config.Command...)
	}
	strategy := appsac.DeploymentStrategy().WithType(appsv1.RollingUpdateDeploymentStrategyType).
		WithRollingUpdate(appsac.RollingUpdateDeployment().WithMaxSurge(intstr.FromInt32(1)).WithMaxUnavailable(intstr.FromInt32(0)))
	if p.Deployment.Strategy == deploy.Recreate {
		strategy = appsac.DeploymentStrategy().WithType(appsv1.RecreateDeploymentStrategyType)
	}
	podSpec := coreac.PodSpec().WithContainers(ctr).WithAutomountServiceAccountToken(false).WithImagePullSecrets(pullSecrets...)
	ann := map[string]string{annRelease: strconv.FormatInt(rel.Number, 10), annDigest: rel.Digest, annID: strconv.FormatInt(rel.ID, 10)}
	dep := appsac.Deployment(name, ns).WithLabels(labels).WithAnnotations(ann).WithSpec(appsac.DeploymentSpec().
		WithReplicas(int32(tgt.Replicas)).WithStrategy(strategy).WithProgressDeadlineSeconds(int32(max(tgt.HealthTimeout.D()/time.Second, 10))).
		WithSelector(metaac.LabelSelector().WithMatchLabels(map[string]string{"app.kubernetes.io/name": name})).
		WithTemplate(coreac.PodTemplateSpec().WithLabels(labels).WithAnnotations(ann).WithSpec(podSpec)))
	d, err := cs.AppsV1().Deployments(ns).Apply(ctx, dep, opts)
	if err != nil {
		return 0, unavailable("apply Deployment "+name, err)
	}
	svc := coreac.Service(name, ns).WithLabels(labels).WithSpec(coreac.ServiceSpec().
		WithSelector(map[string]string{"app.kubernetes.io/name": name}).
		WithPorts(coreac.ServicePort().WithName("http").WithPort(80).WithTargetPort(intstr.FromString("http"))))
	if _, err := cs.CoreV1().Services(ns).Apply(ctx, svc, opts); err != nil {
		return 0, unavailable("apply Service "+name, err)
	}
	return d.Generation, nil
}

// wait watches the Deployment's rollout until every replica runs the
// new template and is available, the progress deadline passes, or the
// environment's health timeout (at least a minute) passes.
func (t *Target) wait(ctx context.Context, cs *clients, p deploy.Plan, gen int64) error {
	if gen == 0 {
		return nil // the project's manifests hold no Deployment to watch
	}
	ns, name := p.Connection.Namespace, Name(p.Scope.Project)
	poll := t.Poll
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	limit := max(p.Env.Target.HealthTimeout.D()*2, time.Minute)
	deadline := time.Now().Add(limit)
	for {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return unavailable("read Deployment "+name, err)
		}
		want := int32(p.Env.Target.Replicas)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas // the project's own manifests say
		}
		st := d.Status
		if st.ObservedGeneration >= gen && st.UpdatedReplicas == want && st.Replicas == want && st.AvailableReplicas == want {
			return nil
		}
		for _, c := range st.Conditions {
			if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
				return apperr.E(apperr.Unavailable, "rollout of %s did not progress: %s", name, truncate(c.Message, 300))
			}
		}
		if time.Now().After(deadline) {
			return apperr.E(apperr.Unavailable, "rollout of %s not done within %s: %d of %d replicas updated, %d available",
				name, limit, st.UpdatedReplicas, want, st.AvailableReplicas)
		}
		if p.Progress != nil {
			p.Progress(fmt.Sprintf("rollout of release #%d: %d of %d replicas updated, %d available", p.Release.Number, st.UpdatedReplicas, want, st.AvailableReplicas))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// Rollout applies the release and waits for its rollout; on failure it
// applies the previous release again (a rollback) and waits for that.
func (t *Target) Rollout(ctx context.Context, p deploy.Plan) error {
	cs, err := t.client(p.Connection)
	if err != nil {
		return err
	}
	if err := checkLeastPrivilege(ctx, cs); err != nil {
		return err
	}
	gen, err := t.apply(ctx, cs, p, p.Release, p.Secrets)
	if err == nil {
		err = t.wait(ctx, cs, p, gen)
	}
	if err == nil && p.Hook != nil {
		if herr := p.Hook.Step(ctx, deploy.StepInfo{Deployment: p.Deployment.ID, Scope: p.Scope, Env: p.Env.Name, Release: p.Release.Number,
			Strategy: p.Deployment.Strategy, Step: 1, Of: 1, Weight: 100}); herr != nil {
			err = apperr.Wrap(herr, apperr.Unavailable, "step 1/1 failed its analysis: "+truncate(herr.Error(), 300))
		}
	}
	if err == nil || ctx.Err() != nil {
		return err
	}
	return t.rollback(context.WithoutCancel(ctx), cs, p, err)
}

func (t *Target) rollback(ctx context.Context, cs *clients, p deploy.Plan, cause error) error {
	if p.Previous == nil {
		// Nothing ran before: remove the Deployment rather than leave
		// a broken one half-running.
		err := cs.AppsV1().Deployments(p.Connection.Namespace).Delete(ctx, Name(p.Scope.Project), metav1.DeleteOptions{})
		if err != nil && !k8serrors.IsNotFound(err) {
			t.Logger.Warn("remove failed first release", "err", err)
		}
		return cause
	}
	if p.Progress != nil {
		p.Progress(fmt.Sprintf("rolling back to release #%d: %s", p.Previous.Number, apperr.Message(cause)))
	}
	gen, err := t.apply(ctx, cs, p, *p.Previous, p.PreviousSecrets)
	if err == nil {
		err = t.wait(ctx, cs, p, gen)
	}
	if err != nil {
		return &deploy.RollbackError{Cause: cause, Err: err}
	}
	return cause
}

// Recover settles an interrupted rollout: the previous release is
// applied again (or, without one, the new release is seen through).
func (t *Target) Recover(ctx context.Context, p deploy.Plan) (int64, error) {
	cs, err := t.client(p.Connection)
	if err != nil {
		return 0, err
	}
	rel, secrets := p.Release, p.Secrets
	if p.Previous != nil {
		rel, secrets = *p.Previous, p.PreviousSecrets
	}
	gen, err := t.apply(ctx, cs, p, rel, secrets)
	if err == nil {
		err = t.wait(ctx, cs, p, gen)
	}
	if err != nil {
		return 0, err
	}
	return rel.ID, nil
}

// Ensure checks that the Deployment runs the plan's release and applies
// it when it does not (Kubernetes itself keeps the pods running).
func (t *Target) Ensure(ctx context.Context, p deploy.Plan) error {
	cs, err := t.client(p.Connection)
	if err != nil {
		return err
	}
	d, err := cs.AppsV1().Deployments(p.Connection.Namespace).Get(ctx, Name(p.Scope.Project), metav1.GetOptions{})
	if err == nil && d.Annotations[annID] == strconv.FormatInt(p.Release.ID, 10) {
		return nil
	}
	if err != nil && !k8serrors.IsNotFound(err) {
		return unavailable("read the Deployment", err)
	}
	gen, err := t.apply(ctx, cs, p, p.Release, p.Secrets)
	if err != nil {
		return err
	}
	return t.wait(ctx, cs, p, gen)
}

func sortStrings(s []string) { slices.Sort(s) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
