from tests.supervisor.conftest import project as project
