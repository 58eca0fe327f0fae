package server

import "github.com/labstack/echo/v4"

// OfflineConfig configures the offline flow. The zero value is its default.
type OfflineConfig struct {
}

// withDefaults fills in defaults and checks the settings against the rest
// of the configuration (for example, that a master key is present).
func (c OfflineConfig) withDefaults(all Config) (OfflineConfig, error) {
	return c, nil
}

func (s *Server) offlineRoutes(e *echo.Echo) {
}
