package server

import "github.com/labstack/echo/v4"

// BadgeConfig configures the badge flow. The zero value is its default.
type BadgeConfig struct {
}

// withDefaults fills in defaults and checks the settings against the rest
// of the configuration (for example, that a master key is present).
func (c BadgeConfig) withDefaults(all Config) (BadgeConfig, error) {
	return c, nil
}

func (s *Server) badgeRoutes(e *echo.Echo) {
}
