package kubetarget

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/restmapper"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/deploy"
)

// maxObjects bounds the objects of a release's manifests.
const maxObjects = 100

// applyManifests applies the project's own manifests: ${IMAGE} becomes
// the release's image by digest, every object goes to the environment's
// namespace (one naming another namespace, or a cluster-scoped kind, is
// refused before anything is applied), and the Deployment named like the
// project — the one whose rollout is watched — gets the release
// annotations. It returns that Deployment's generation (0 when the
// manifests hold none: nothing to watch).
func (t *Target) applyManifests(ctx context.Context, cs *clients, p deploy.Plan, rel deploy.Release) (int64, error) {
	ns, name := p.Connection.Namespace, Name(p.Scope.Project)
	text := strings.ReplaceAll(rel.Config.Manifests, "${IMAGE}", rel.Ref())
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(text)), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, apperr.Wrap(err, apperr.Invalid, "release #"+strconv.FormatInt(rel.Number, 10)+" manifests: "+truncate(err.Error(), 200))
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			return 0, apperr.E(apperr.Invalid, "every manifest needs apiVersion, kind and metadata.name")
		}
		if n := u.GetNamespace(); n != "" && n != ns {
			return 0, apperr.E(apperr.Invalid, "%s %s names namespace %s: the environment deploys to %s only", u.GetKind(), u.GetName(), n, ns)
		}
		u.SetNamespace(ns)
		objs = append(objs, u)
		if len(objs) > maxObjects {
			return 0, apperr.E(apperr.Invalid, "at most %d objects per release", maxObjects)
		}
	}
	groups, err := restmapper.GetAPIGroupResources(cs.Discovery())
	if err != nil {
		return 0, unavailable("discover the cluster's resources", err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	type target struct {
		obj *unstructured.Unstructured
		gvr schema.GroupVersionResource
	}
	var targets []target
	for _, u := range objs {
		gvk := u.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return 0, apperr.E(apperr.Invalid, "the cluster does not know %s %s", gvk.GroupVersion(), gvk.Kind)
		}
		if m.Scope.Name() != "namespace" {
			return 0, apperr.E(apperr.Invalid, "%s %s is cluster-scoped: releases apply namespaced objects only", gvk.Kind, u.GetName())
		}
		if gvk.Group == "apps" && gvk.Kind == "Deployment" && u.GetName() == name {
			ann := u.GetAnnotations()
			if ann == nil {
				ann = map[string]string{}
			}
			ann[annRelease], ann[annDigest], ann[annID] = strconv.FormatInt(rel.Number, 10), rel.Digest, strconv.FormatInt(rel.ID, 10)
			u.SetAnnotations(ann)
		}
		targets = append(targets, target{u, m.Resource})
	}
	var gen int64
	for _, tg := range targets {
		out, err := cs.dyn.Resource(tg.gvr).Namespace(ns).Apply(ctx, tg.obj.GetName(), tg.obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		if err != nil {
			return 0, unavailable("apply "+tg.obj.GetKind()+" "+tg.obj.GetName(), err)
		}
		if tg.gvr.Resource == "deployments" && tg.obj.GetName() == name {
			gen = out.GetGeneration()
		}
	}
	return gen, nil
}
