// Package iac finds misconfigurations in infrastructure as code.
package iac
