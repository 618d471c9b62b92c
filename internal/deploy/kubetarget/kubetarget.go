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
	"k8s.io/apimachinery/pkg/types"
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
	// Router, when set, is the gateway's route service: an environment
	// with a host gets the route deploy.RouteName pointed at its
	// Services, and canary steps become route weights.
	Router deploy.Router
	// ServiceURL is the gateway's backend URL of a Service (default
	// http://SERVICE.NAMESPACE.svc.cluster.local: Rampart runs in the
	// cluster).
	ServiceURL func(namespace, service string) string
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

	labelName = "app.kubernetes.io/name"
	// labelSet names, on every generated pod, the Deployment it belongs
	// to: the Service selects one Deployment (or, between canary steps,
	// every Deployment of the project) through it.
	labelSet = "rampart.dev/deployment"
)

// labels are the labels of a project's generated objects.
func labels(p deploy.Plan) map[string]string {
	return map[string]string{labelName: Name(p.Scope.Project), "app.kubernetes.io/managed-by": "rampart", "rampart.dev/environment": p.Env.Name}
}

// applyRelease applies rel as the Deployment named set (with its Secret
// and pull secret) scaled to replicas, and returns the Deployment's
// generation after the apply. A release carrying the project's own
// manifests is applied as they are (set and replicas do not apply).
func (t *Target) applyRelease(ctx context.Context, cs *clients, p deploy.Plan, rel deploy.Release, secrets map[string]deploy.Value, set string, replicas int) (int64, error) {
	if rel.Config.Manifests != "" {
		return t.applyManifests(ctx, cs, p, rel)
	}
	ns := p.Connection.Namespace
	name := Name(p.Scope.Project)
	lbl := labels(p)
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}

	secretName := set + "-secrets"
	data := map[string][]byte{}
	for _, ref := range rel.SecretRefs {
		data[ref.Env] = []byte(secrets[ref.Env])
	}
	if _, err := cs.CoreV1().Secrets(ns).Apply(ctx, coreac.Secret(secretName, ns).WithLabels(lbl).
		WithType(corev1.SecretTypeOpaque).WithData(data), opts); err != nil {
		return 0, unavailable("apply Secret "+secretName, err)
	}
	var pullSecrets []*coreac.LocalObjectReferenceApplyConfiguration
	if t.PullAuth != nil {
		if user, pw, ok := t.PullAuth(ctx, rel.Image); ok {
			host, _, _ := strings.Cut(rel.Image, "/")
			auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + string(pw)))
			cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"auth": auth}}})
			if _, err := cs.CoreV1().Secrets(ns).Apply(ctx, coreac.Secret(name+"-pull", ns).WithLabels(lbl).
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
	if p.Deployment.Strategy == deploy.Recreate && set == name {
		strategy = appsac.DeploymentStrategy().WithType(appsv1.RecreateDeploymentStrategyType)
	}
	// The project's main Deployment keeps the selector it always had
	// (selectors are immutable); the others select their own pods only.
	selector := map[string]string{labelName: name}
	if set != name {
		selector[labelSet] = set
	}
	podLabels := labels(p)
	podLabels[labelSet] = set
	podSpec := coreac.PodSpec().WithContainers(ctr).WithAutomountServiceAccountToken(false).WithImagePullSecrets(pullSecrets...)
	ann := map[string]string{annRelease: strconv.FormatInt(rel.Number, 10), annDigest: rel.Digest, annID: strconv.FormatInt(rel.ID, 10)}
	dep := appsac.Deployment(set, ns).WithLabels(lbl).WithAnnotations(ann).WithSpec(appsac.DeploymentSpec().
		WithReplicas(int32(replicas)).WithStrategy(strategy).WithProgressDeadlineSeconds(int32(max(tgt.HealthTimeout.D()/time.Second, 10))).
		WithSelector(metaac.LabelSelector().WithMatchLabels(selector)).
		WithTemplate(coreac.PodTemplateSpec().WithLabels(podLabels).WithAnnotations(ann).WithSpec(podSpec)))
	d, err := cs.AppsV1().Deployments(ns).Apply(ctx, dep, opts)
	if err != nil {
		return 0, unavailable("apply Deployment "+set, err)
	}
	return d.Generation, nil
}

// applyService points the Service svc at the pods of the Deployment set
// (every Deployment of the project when set is empty).
func (t *Target) applyService(ctx context.Context, cs *clients, p deploy.Plan, svc, set string) error {
	ns := p.Connection.Namespace
	selector := map[string]string{labelName: Name(p.Scope.Project)}
	if set != "" {
		selector[labelSet] = set
	}
	ac := coreac.Service(svc, ns).WithLabels(labels(p)).WithSpec(coreac.ServiceSpec().WithSelector(selector).
		WithPorts(coreac.ServicePort().WithName("http").WithPort(80).WithTargetPort(intstr.FromString("http"))))
	if _, err := cs.CoreV1().Services(ns).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return unavailable("apply Service "+svc, err)
	}
	return nil
}

// wait watches the Deployment set's rollout until every replica runs
// the new template and is available, its pods cannot be created, the
// progress deadline passes, or the environment's health timeout (at
// least a minute) passes.
func (t *Target) wait(ctx context.Context, cs *clients, p deploy.Plan, set string, gen int64) error {
	if gen == 0 {
		return nil // the project's manifests hold no Deployment to watch
	}
	ns := p.Connection.Namespace
	poll := t.Poll
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	limit := max(p.Env.Target.HealthTimeout.D()*2, time.Minute)
	deadline := time.Now().Add(limit)
	for {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, set, metav1.GetOptions{})
		if err != nil {
			return unavailable("read Deployment "+set, err)
		}
		want := int32(p.Env.Target.Replicas)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		st := d.Status
		if st.ObservedGeneration >= gen && st.UpdatedReplicas == want && st.Replicas == want && st.AvailableReplicas == want {
			return nil
		}
		for _, c := range st.Conditions {
			if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
				return apperr.E(apperr.Unavailable, "rollout of %s did not progress: %s", set, truncate(c.Message, 300))
			}
			if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue && st.ObservedGeneration >= gen {
				return apperr.E(apperr.Unavailable, "the pods of %s cannot be created: %s", set, truncate(c.Message, 300))
			}
		}
		if time.Now().After(deadline) {
			return apperr.E(apperr.Unavailable, "rollout of %s not done within %s: %d of %d replicas updated, %d available",
				set, limit, st.UpdatedReplicas, want, st.AvailableReplicas)
		}
		if want == 0 {
			t.progress(p, "scaling %s down: %d pod(s) left", set, st.Replicas)
		} else {
			t.progress(p, "%s: %d of %d replicas updated, %d available", set, st.UpdatedReplicas, want, st.AvailableReplicas)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// apply applies rel as set with the environment's replicas and waits
// until they are available.
func (t *Target) applyAndWait(ctx context.Context, cs *clients, p deploy.Plan, rel deploy.Release, secrets map[string]deploy.Value, set string, replicas int) error {
	gen, err := t.applyRelease(ctx, cs, p, rel, secrets, set, replicas)
	if err != nil {
		return err
	}
	if rel.Config.Manifests != "" {
		set = Name(p.Scope.Project)
	}
	return t.wait(ctx, cs, p, set, gen)
}

// scale sets the replicas of the Deployment set and waits until the
// count is reached.
func (t *Target) scale(ctx context.Context, cs *clients, p deploy.Plan, set string, replicas int) error {
	patch := []byte(`{"spec":{"replicas":` + strconv.Itoa(replicas) + `}}`)
	d, err := cs.AppsV1().Deployments(p.Connection.Namespace).Patch(ctx, set, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil {
		return unavailable("scale Deployment "+set, err)
	}
	return t.wait(ctx, cs, p, set, d.Generation)
}

// sets lists the project's generated Deployments in the namespace.
func (t *Target) sets(ctx context.Context, cs *clients, p deploy.Plan) ([]appsv1.Deployment, error) {
	l, err := cs.AppsV1().Deployments(p.Connection.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labelName + "=" + Name(p.Scope.Project) + ",app.kubernetes.io/managed-by=rampart"})
	if err != nil {
		return nil, unavailable("list Deployments", err)
	}
	return l.Items, nil
}

// activeSet returns the Deployment the project's Service selects: ""
// when there is no Service yet, the main Deployment when the Service
// selects every pod of the project (between canary steps, or as older
// Rampart versions left it).
func (t *Target) activeSet(ctx context.Context, cs *clients, p deploy.Plan) (string, error) {
	name := Name(p.Scope.Project)
	svc, err := cs.CoreV1().Services(p.Connection.Namespace).Get(ctx, name, metav1.GetOptions{})
	if k8serrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", unavailable("read Service "+name, err)
	}
	if set := svc.Spec.Selector[labelSet]; set != "" {
		return set, nil
	}
	return name, nil
}

// scaleOthers scales every generated Deployment but keep to zero.
func (t *Target) scaleOthers(ctx context.Context, cs *clients, p deploy.Plan, keep string) error {
	ds, err := t.sets(ctx, cs, p)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.Name == keep || (d.Spec.Replicas != nil && *d.Spec.Replicas == 0) {
			continue
		}
		if err := t.scale(ctx, cs, p, d.Name, 0); err != nil {
			return err
		}
	}
	return nil
}

func releaseOf(d *appsv1.Deployment) string { return d.Annotations[annID] }

// settle makes rel serve alone at full strength: the Deployment already
// running it (the one the Service selects first, then any other) or
// else the main Deployment gets it with the environment's replicas, the
// Service and the gateway route point there, and every other
// Deployment of the project is scaled to zero. Rollbacks, recoveries
// and Ensure all come down to it.
func (t *Target) settle(ctx context.Context, cs *clients, p deploy.Plan, rel deploy.Release, secrets map[string]deploy.Value) error {
	name := Name(p.Scope.Project)
	if rel.Config.Manifests != "" {
		if err := t.applyAndWait(ctx, cs, p, rel, secrets, name, p.Env.Target.Replicas); err != nil {
			return err
		}
		return t.scaleOthers(ctx, cs, p, name)
	}
	active, err := t.activeSet(ctx, cs, p)
	if err != nil {
		return err
	}
	ds, err := t.sets(ctx, cs, p)
	if err != nil {
		return err
	}
	id := strconv.FormatInt(rel.ID, 10)
	set := ""
	for _, prefer := range []func(d *appsv1.Deployment) bool{
		func(d *appsv1.Deployment) bool { return d.Name == active },
		func(d *appsv1.Deployment) bool { return d.Name == name },
		func(d *appsv1.Deployment) bool { return true },
	} {
		for i := range ds {
			if set == "" && releaseOf(&ds[i]) == id && prefer(&ds[i]) {
				set = ds[i].Name
			}
		}
	}
	if set == "" {
		set = name
	}
	if err := t.applyAndWait(ctx, cs, p, rel, secrets, set, p.Env.Target.Replicas); err != nil {
		return err
	}
	if err := t.applyService(ctx, cs, p, name, set); err != nil {
		return err
	}
	if err := t.route(ctx, p, backend{name, 1, rel}); err != nil {
		return err
	}
	return t.scaleOthers(ctx, cs, p, set)
}

// hook reports a step and asks the plan's hook about it.
func (t *Target) hook(ctx context.Context, p deploy.Plan, step, of, weight int, what string) error {
	if p.Progress != nil {
		p.Progress(fmt.Sprintf("step %d/%d: %s", step, of, what))
	}
	if p.Hook == nil {
		return nil
	}
	err := p.Hook.Step(ctx, deploy.StepInfo{Deployment: p.Deployment.ID, Scope: p.Scope, Env: p.Env.Name, Release: p.Release.Number,
		Strategy: p.Deployment.Strategy, Step: step, Of: of, Weight: weight})
	if err != nil {
		return apperr.Wrap(err, apperr.Unavailable, fmt.Sprintf("step %d/%d failed its analysis: %s", step, of, truncate(err.Error(), 300)))
	}
	return nil
}

func (t *Target) progress(p deploy.Plan, format string, args ...any) {
	if p.Progress != nil {
		p.Progress(fmt.Sprintf(format, args...))
	}
}

// Rollout carries out the deployment's strategy (see strategies.go);
// when it fails the previous release is made to serve alone again (a
// rollback), or, for a first release, what was applied is removed.
func (t *Target) Rollout(ctx context.Context, p deploy.Plan) error {
	cs, err := t.client(p.Connection)
	if err != nil {
		return err
	}
	if err := checkLeastPrivilege(ctx, cs); err != nil {
		return err
	}
	switch {
	case p.Release.Config.Manifests != "":
		err = t.rolling(ctx, cs, p)
	case p.Deployment.Strategy == deploy.BlueGreen:
		err = t.blueGreen(ctx, cs, p)
	case p.Deployment.Strategy == deploy.Canary:
		err = t.canary(ctx, cs, p)
	default:
		err = t.rolling(ctx, cs, p)
	}
	if err == nil || ctx.Err() != nil {
		return err
	}
	return t.rollback(context.WithoutCancel(ctx), cs, p, err)
}

func (t *Target) rollback(ctx context.Context, cs *clients, p deploy.Plan, cause error) error {
	if p.Previous == nil {
		// Nothing ran before: remove the Deployments rather than leave
		// a broken one half-running.
		ds, err := t.sets(ctx, cs, p)
		if err != nil {
			t.Logger.Warn("list failed first release", "err", err)
		}
		names := []string{Name(p.Scope.Project)}
		for _, d := range ds {
			if d.Name != names[0] {
				names = append(names, d.Name)
			}
		}
		for _, n := range names {
			err := cs.AppsV1().Deployments(p.Connection.Namespace).Delete(ctx, n, metav1.DeleteOptions{})
			if err != nil && !k8serrors.IsNotFound(err) {
				t.Logger.Warn("remove failed first release", "deployment", n, "err", err)
			}
		}
		return cause
	}
	t.progress(p, "rolling back to release #%d: %s", p.Previous.Number, apperr.Message(cause))
	if err := t.settle(ctx, cs, p, *p.Previous, p.PreviousSecrets); err != nil {
		return &deploy.RollbackError{Cause: cause, Err: err}
	}
	t.progress(p, "rolled back: release #%d serves alone", p.Previous.Number)
	return cause
}

// Recover settles an interrupted rollout: the previous release serves
// alone again at full strength (or, without one, the new release is
// seen through).
func (t *Target) Recover(ctx context.Context, p deploy.Plan) (int64, error) {
	cs, err := t.client(p.Connection)
	if err != nil {
		return 0, err
	}
	rel, secrets := p.Release, p.Secrets
	if p.Previous != nil {
		rel, secrets = *p.Previous, p.PreviousSecrets
	}
	if err := t.settle(ctx, cs, p, rel, secrets); err != nil {
		return 0, err
	}
	return rel.ID, nil
}

// Ensure checks that the plan's release serves alone at full strength
// and settles it when it does not (Kubernetes itself keeps the pods
// running).
func (t *Target) Ensure(ctx context.Context, p deploy.Plan) error {
	cs, err := t.client(p.Connection)
	if err != nil {
		return err
	}
	id := strconv.FormatInt(p.Release.ID, 10)
	name := Name(p.Scope.Project)
	if p.Release.Config.Manifests != "" {
		d, err := cs.AppsV1().Deployments(p.Connection.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil && releaseOf(d) == id {
			return nil
		}
		if err != nil && !k8serrors.IsNotFound(err) {
			return unavailable("read the Deployment", err)
		}
		return t.settle(ctx, cs, p, p.Release, p.Secrets)
	}
	active, err := t.activeSet(ctx, cs, p)
	if err != nil {
		return err
	}
	ds, err := t.sets(ctx, cs, p)
	if err != nil {
		return err
	}
	serving := false
	for _, d := range ds {
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
		}
		if d.Name == active {
			serving = releaseOf(&d) == id && replicas == int32(p.Env.Target.Replicas)
		} else if replicas > 0 {
			return t.settle(ctx, cs, p, p.Release, p.Secrets) // a leftover runs beside it
		}
	}
	if serving {
		return nil
	}
	return t.settle(ctx, cs, p, p.Release, p.Secrets)
}

func sortStrings(s []string) { slices.Sort(s) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
