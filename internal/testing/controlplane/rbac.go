package controlplane

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// GeneratedRoles reads deploy/rbac/<component>/role.yaml, which make
// manifests generates from the +kubebuilder:rbac markers: a ClusterRole,
// and a Role for what is granted in the release namespace only.
func GeneratedRoles(component string) (*rbacv1.ClusterRole, []*rbacv1.Role, error) {
	path := filepath.Join(RepoRoot(), "deploy", "rbac", component, "role.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var clusterRole *rbacv1.ClusterRole
	var roles []*rbacv1.Role
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		switch meta.Kind {
		case "ClusterRole":
			clusterRole = &rbacv1.ClusterRole{}
			err = yaml.UnmarshalStrict([]byte(doc), clusterRole)
		case "Role":
			role := &rbacv1.Role{}
			err = yaml.UnmarshalStrict([]byte(doc), role)
			roles = append(roles, role)
		case "":
			continue
		default:
			err = fmt.Errorf("unexpected kind %s", meta.Kind)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if clusterRole == nil || len(clusterRole.Rules) == 0 {
		return nil, nil, fmt.Errorf("%s: no ClusterRole with rules", path)
	}
	return clusterRole, roles, nil
}

// GrantGeneratedRoles creates a component's generated roles and binds them
// to user; the Roles go to namespace (the release namespace). It returns
// what it created, for cleanup.
func GrantGeneratedRoles(ctx context.Context, c client.Client, component, user, namespace string) ([]client.Object, error) {
	clusterRole, roles, err := GeneratedRoles(component)
	if err != nil {
		return nil, err
	}
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	objects := []client.Object{clusterRole, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: clusterRole.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole.Name},
		Subjects:   subjects,
	}}
	for _, role := range roles {
		role.Namespace = namespace
		objects = append(objects, role, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: namespace},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
			Subjects:   subjects,
		})
	}
	for _, obj := range objects {
		if err := c.Create(ctx, obj); err != nil {
			return nil, fmt.Errorf("grant %s: %w", obj.GetName(), err)
		}
	}
	return objects, nil
}
