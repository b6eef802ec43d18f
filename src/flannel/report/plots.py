"""Every figure's drawing function, by its registry name (flannel.report.figures): the functions live in one
module per family of figures and are named by their key, so one grep finds a figure's rule entry, registry
entry, function and caption."""

from __future__ import annotations

from .plots_cloud import a_dead_cloud, e_displacements, g_pca, k_radial, m_epochs
from .plots_freeze import b_fraction_moved, c_loss, h_indicators, i_gradients, j_adam_accounting, l_lattice
from .plots_hops import q_hop_phase_space, r_ulp_ratio, s_adam_term, w_freeze_causes
from .plots_lifespan import y_lifespan
from .plots_motion import t_five_phases, u_kinetics, v_supernova, x_h_mean
from .plots_pairs import d_e_minus_w, f_decomposition, n_tied_untied_distance, o_sweep_distance
from .sky import p_sky_map

DRAW = {function.__name__: function for function in (
    a_dead_cloud, b_fraction_moved, c_loss, d_e_minus_w, e_displacements, f_decomposition, g_pca, h_indicators,
    i_gradients, j_adam_accounting, k_radial, l_lattice, m_epochs, n_tied_untied_distance, o_sweep_distance,
    p_sky_map, q_hop_phase_space, r_ulp_ratio, s_adam_term, t_five_phases, u_kinetics, v_supernova,
    w_freeze_causes, x_h_mean, y_lifespan)}
