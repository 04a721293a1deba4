package simulator

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// ctrlFunc adapts a reconcile function.
func ctrlFunc(f func(context.Context, ctrl.Request) (ctrl.Result, error)) reconcile.Reconciler {
	return reconcile.Func(f)
}
